package plainws

import (
	"encoding/binary"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// frameReader reads the websocket frames a client sends (RFC 6455, no
// extensions; "frame" means those in this file) from the bytes as they
// arrive, in pieces of any size: it keeps the start of a frame that is not
// complete yet, and the payload of a fragmented message, only while it has
// them, so that an idle socket holds no buffer. One goroutine at a time
// uses it.
type frameReader struct {
	limit   int    // the largest message, in bytes
	pending []byte // the start of a frame not complete yet
	msg     []byte // the payload so far of a fragmented message
	msgOp   byte   // that message's opcode; 0 when none is under way
	done    bool   // after an error, or fn said stop: the rest is dropped
}

// Opcodes of RFC 6455, section 5.2.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// frameError is why a client's frames cannot be read: the close code and
// reason to answer with.
type frameError struct {
	code   int
	reason string
}

func (e *frameError) Error() string { return e.reason }

func protocolError(reason string) *frameError {
	return &frameError{code: websocket.CloseProtocolError, reason: reason}
}

// errTooBig is a message over the limit.
var errTooBig = &frameError{code: websocket.CloseMessageTooBig, reason: reasonMessageTooBig}

// errInvalidUTF8 is a text message that is not UTF-8 (RFC 6455, section
// 8.1).
var errInvalidUTF8 = &frameError{code: websocket.CloseInvalidFramePayloadData, reason: "invalid utf-8"}

// read takes the next bytes from the client and calls fn with each
// complete message (opText, which must be UTF-8, or opBinary, fragments
// joined) and each control frame, in order, with its unmasked payload,
// which fn must not keep. It stops when fn returns false. After that, or
// after it returned an error, it drops all it is given.
func (r *frameReader) read(data []byte, fn func(op byte, payload []byte) bool) *frameError {
	if r.done {
		return nil
	}
	if len(r.pending) > 0 {
		r.pending = append(r.pending, data...)
		data = r.pending
	}
	for len(data) > 0 {
		n, err := r.next(data, fn)
		if err != nil || n < 0 {
			r.done = true
			r.pending, r.msg = nil, nil
			return err
		}
		if n == 0 {
			break // data holds the start of a frame
		}
		data = data[n:]
	}
	switch {
	case len(data) == 0:
		r.pending = nil
	case len(r.pending) > 0:
		// data is the end of pending: move it to the front.
		r.pending = r.pending[:copy(r.pending, data)]
	default:
		r.pending = append([]byte(nil), data...)
	}
	return nil
}

// next reads the frame at the start of b: it returns its length once it
// has been handled, 0 if b holds only part of it, and -1 if fn said stop.
func (r *frameReader) next(b []byte, fn func(op byte, payload []byte) bool) (int, *frameError) {
	if len(b) < 2 {
		return 0, nil
	}
	fin, rsv, op := b[0]&0x80 != 0, b[0]&0x70, b[0]&0x0f
	masked, length := b[1]&0x80 != 0, uint64(b[1]&0x7f)
	pos := 2
	switch length {
	case 126:
		if len(b) < 4 {
			return 0, nil
		}
		length, pos = uint64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return 0, nil
		}
		length, pos = binary.BigEndian.Uint64(b[2:]), 10
	}
	switch {
	case rsv != 0:
		return 0, protocolError("reserved bits set")
	case !masked:
		return 0, protocolError("client frames must be masked")
	case op >= opClose && (op > opPong || !fin || length > 125):
		return 0, protocolError("invalid control frame")
	case op > opBinary && op < opClose:
		return 0, protocolError("unknown opcode")
	case op == opContinuation && r.msgOp == 0:
		return 0, protocolError("continuation frame without a message")
	case (op == opText || op == opBinary) && r.msgOp != 0:
		return 0, protocolError("new message before the last one ended")
	case op < opClose && length > uint64(r.limit-len(r.msg)):
		// Refused before its payload comes, so that a reader never holds
		// more than the limit.
		return 0, errTooBig
	}
	end := pos + 4 + int(length)
	if len(b) < end {
		return 0, nil
	}
	payload := b[pos+4 : end]
	mask := b[pos : pos+4]
	for i := range payload {
		payload[i] ^= mask[i&3]
	}

	switch {
	case op >= opClose, op != opContinuation && fin:
	case op != opContinuation:
		r.msgOp, r.msg = op, append([]byte(nil), payload...)
		return end, nil
	default:
		r.msg = append(r.msg, payload...)
		if !fin {
			return end, nil
		}
		op, payload = r.msgOp, r.msg
		r.msgOp, r.msg = 0, nil
	}
	if op == opText && !utf8.Valid(payload) {
		return 0, errInvalidUTF8
	}
	if !fn(op, payload) {
		return -1, nil
	}
	return end, nil
}

// parseClose reads a close frame's payload: the code (1005 when there is
// none) and the reason.
func parseClose(p []byte) (code int, reason string, err *frameError) {
	switch {
	case len(p) == 0:
		return websocket.CloseNoStatusReceived, "", nil
	case len(p) == 1:
		return 0, "", protocolError("invalid close frame")
	}
	code = int(binary.BigEndian.Uint16(p))
	if !validCloseCode(code) {
		return 0, "", protocolError("invalid close code")
	}
	if !utf8.Valid(p[2:]) {
		return 0, "", &frameError{code: websocket.CloseInvalidFramePayloadData, reason: "invalid UTF-8 in close reason"}
	}
	return code, string(p[2:]), nil
}

// validCloseCode says whether a peer may send code (RFC 6455, section
// 7.4, and the IANA registry).
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	default:
		return code >= 3000 && code <= 4999
	}
}
