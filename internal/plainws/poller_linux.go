package plainws

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
)

// pollEvents are what the poller waits for on a socket: data, or the end
// of the connection. EPOLLONESHOT disarms the socket once it reports, so
// that one reader at a time runs; the reader re-arms it when done.
const pollEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT

// poller waits, on one goroutine and one epoll instance, for any socket's
// client to send something, and starts a reader for it: an idle socket
// needs no goroutine parked in a read. The tracker starts it with the
// first socket and closes it after the last.
type poller struct {
	epfd int
	wake [2]int // a pipe: a byte on wake[1] stops run

	mu      sync.Mutex
	lastID  uint64
	sockets map[uint64]*socket // by pollID; 0 is the pipe's

	done chan struct{} // closed by run when it returns
}

// newPoller starts a poller.
func newPoller() (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	p := &poller{epfd: epfd, sockets: make(map[uint64]*socket), done: make(chan struct{})}
	if err := syscall.Pipe2(p.wake[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		syscall.Close(epfd)
		return nil, fmt.Errorf("pipe2: %w", err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN} // key 0
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p.wake[0], &ev); err != nil {
		p.closeFDs()
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	go p.run()
	return p, nil
}

// add has the poller watch s, whose reads it then starts.
func (p *poller) add(s *socket) error {
	raw, err := rawConn(s)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.lastID++
	s.pollID, s.raw = p.lastID, raw
	p.sockets[s.pollID] = s
	p.mu.Unlock()
	if err := p.ctl(s, syscall.EPOLL_CTL_ADD); err != nil {
		p.mu.Lock()
		delete(p.sockets, s.pollID)
		p.mu.Unlock()
		s.pollID = 0
		return err
	}
	return nil
}

// rearm has the poller watch s again, after a reader has read all that
// had come.
func (p *poller) rearm(s *socket) error {
	return p.ctl(s, syscall.EPOLL_CTL_MOD)
}

// remove has the poller forget s, before s closes its connection.
func (p *poller) remove(s *socket) {
	if s.pollID == 0 {
		return
	}
	p.mu.Lock()
	delete(p.sockets, s.pollID)
	p.mu.Unlock()
	// A closed connection has left the epoll instance already.
	_ = p.ctl(s, syscall.EPOLL_CTL_DEL)
}

func (p *poller) ctl(s *socket, op int) error {
	ev := syscall.EpollEvent{Events: pollEvents, Fd: int32(uint32(s.pollID)), Pad: int32(uint32(s.pollID >> 32))}
	var err error
	if cerr := s.raw.Control(func(fd uintptr) {
		err = syscall.EpollCtl(p.epfd, op, int(fd), &ev)
	}); cerr != nil {
		return cerr
	}
	if err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

// run waits for the sockets' events and starts their readers, until close.
func (p *poller) run() {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			// Not expected with valid arguments; the sockets' pings
			// drop them as silent.
			return
		}
		for _, ev := range events[:n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if id == 0 {
				return
			}
			p.mu.Lock()
			s := p.sockets[id]
			p.mu.Unlock()
			if s != nil {
				s.readable(p)
			}
		}
	}
}

// close stops run, waits for it, and releases the epoll instance. Every
// socket has been removed.
func (p *poller) close() {
	_, _ = syscall.Write(p.wake[1], []byte{0})
	<-p.done
	p.closeFDs()
}

func (p *poller) closeFDs() {
	syscall.Close(p.wake[0])
	syscall.Close(p.wake[1])
	syscall.Close(p.epfd)
}

// readable is called by the poller when the client has sent something:
// it starts a reader, unless reading has stopped. The poller does not
// call it again until the reader re-arms it.
func (s *socket) readable(p *poller) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readDone {
		return
	}
	s.readers.Add(1)
	go s.readReady(p)
}

// readReady is a reader started by the poller: it reads all that has
// come, then has the poller watch the socket again.
func (s *socket) readReady(p *poller) {
	defer s.readers.Done()
	if !s.readAvailable() {
		return
	}
	// Re-armed under mu, which readable takes to start the next reader:
	// that reader sees what this one left in s.frames.
	s.mu.Lock()
	err := p.rearm(s)
	s.mu.Unlock()
	if err != nil {
		s.readFailed()
	}
}

// readAvailable reads, without waiting, all that the client has sent, and
// handles it. It returns false when the socket is to read nothing more.
func (s *socket) readAvailable() bool {
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	for {
		var n int
		var rerr error
		err := s.raw.Read(func(fd uintptr) bool {
			n, rerr = syscall.Read(int(fd), *bp)
			return true // never wait
		})
		switch {
		case err == nil && errors.Is(rerr, syscall.EINTR):
			continue
		case err == nil && errors.Is(rerr, syscall.EAGAIN):
			return true
		case err != nil || rerr != nil || n <= 0:
			// Closed, failed, or the client's end of the connection.
			s.readFailed()
			return false
		}
		if !s.received((*bp)[:n]) {
			return false
		}
	}
}

// rawConn returns the connection of s for reads that do not wait.
func rawConn(s *socket) (syscall.RawConn, error) {
	sc, ok := s.conn.NetConn().(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("a %T has no file descriptor", s.conn.NetConn())
	}
	return sc.SyscallConn()
}
