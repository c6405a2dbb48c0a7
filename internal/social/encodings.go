package social

import "sync"

// Encodings holds what transports encoded of one event, each encoding
// made once for all of the event's subscribers in this process (a
// notification goes to every socket of its recipient). Its zero value is
// ready to use, and nil caches nothing. It is safe for concurrent use.
type Encodings struct {
	mu  sync.Mutex
	all []encoding
}

type encoding struct {
	enc Encoder
	b   []byte
}

// Encoder encodes an event in a transport's wire format. It is also its
// encoding's key in Encodings: use a comparable type of the transport's
// own, such as an empty struct.
type Encoder interface {
	Encode(ev *Event) []byte
}

// Get returns enc's encoding of ev, whose Encodings e is, and encodes ev
// only the first time. The bytes are shared: do not change them.
func (e *Encodings) Get(enc Encoder, ev *Event) []byte {
	if e == nil {
		return enc.Encode(ev)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, x := range e.all {
		if x.enc == enc {
			return x.b
		}
	}
	b := enc.Encode(ev)
	e.all = append(e.all, encoding{enc: enc, b: b})
	return b
}
