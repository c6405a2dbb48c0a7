package wspolicy

import "context"

// SocketContext returns the context of a socket that outlives the request
// that opened it: the values of values (what the socket keeps of its
// upgrade request's context) and the end of end (the server's shutdown). A
// context derived from it follows its end without a goroutine of its own.
func SocketContext(end, values context.Context) context.Context {
	return socketContext{Context: end, values: values}
}

type socketContext struct {
	context.Context                 // the end
	values          context.Context // the request's, without its end
}

func (c socketContext) Value(key any) any { return c.values.Value(key) }

// AfterFunc lets context.WithCancel and context.AfterFunc follow c's end
// without starting a goroutine (see context.AfterFunc).
func (c socketContext) AfterFunc(f func()) (stop func() bool) {
	return context.AfterFunc(c.Context, f)
}
