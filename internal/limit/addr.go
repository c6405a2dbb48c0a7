package limit

import (
	"net"
	"net/netip"
)

// Address returns the key a client address is limited by: the IP of a
// "host:port" (or bare host) for IPv4, and its /64 network for IPv6, since
// one host commonly holds a whole /64.
func Address(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.WithZone("").Prefix(64)
		return p.String()
	}
	return ip.String()
}
