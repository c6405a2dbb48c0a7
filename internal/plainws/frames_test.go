package plainws

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// maskedFrame encodes a frame as a client sends it: masked, with the
// given first byte (FIN, RSV and opcode).
func maskedFrame(b0 byte, payload []byte) []byte {
	f := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	case n <= 0xffff:
		f = append(f, 0x80|126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	mask := [4]byte{0x12, 0x34, 0x56, 0x78}
	f = append(f, mask[:]...)
	for i, c := range payload {
		f = append(f, c^mask[i&3])
	}
	return f
}

const fin = 0x80

type readFrame struct {
	op      byte
	payload string
}

// readAll feeds data to a new frameReader in pieces of size bytes and
// returns what it handed out, and its error.
func readAll(data []byte, size, limit int) ([]readFrame, *frameError) {
	r := frameReader{limit: limit}
	var got []readFrame
	for len(data) > 0 {
		n := min(size, len(data))
		// A copy, as a reader's buffer is reused for the next read.
		piece := append([]byte(nil), data[:n]...)
		data = data[n:]
		if err := r.read(piece, func(op byte, p []byte) bool {
			got = append(got, readFrame{op, string(p)})
			return op != opClose
		}); err != nil {
			return got, err
		}
	}
	if len(r.pending) > 0 || r.msg != nil {
		return got, &frameError{reason: fmt.Sprintf("left over: %d pending bytes, message %q", len(r.pending), r.msg)}
	}
	return got, nil
}

func TestFrameReader(t *testing.T) {
	big := strings.Repeat("x", 70000)
	var stream []byte
	stream = append(stream, maskedFrame(fin|opText, []byte(`{"type":"ping"}`))...)
	stream = append(stream, maskedFrame(opText, []byte(`{"mes`))...)
	stream = append(stream, maskedFrame(fin|opPing, []byte("p1"))...)
	stream = append(stream, maskedFrame(opContinuation, []byte(`sage":`))...)
	stream = append(stream, maskedFrame(fin|opContinuation, []byte(`"hi"}`))...)
	stream = append(stream, maskedFrame(fin|opBinary, []byte(big[:300]))...)
	stream = append(stream, maskedFrame(fin|opPong, nil)...)
	stream = append(stream, maskedFrame(fin|opText, nil)...)
	stream = append(stream, maskedFrame(fin|opClose, []byte{0x03, 0xe8, 'b', 'y', 'e'})...)
	want := []readFrame{
		{opText, `{"type":"ping"}`},
		{opPing, "p1"},
		{opText, `{"message":"hi"}`},
		{opBinary, big[:300]},
		{opPong, ""},
		{opText, ""},
		{opClose, "\x03\xe8bye"},
	}
	// Every way of cutting the stream into pieces gives the same frames.
	for _, size := range []int{1, 2, 3, 7, 64, 4096, len(stream)} {
		got, err := readAll(stream, size, 1000)
		if err != nil {
			t.Fatalf("pieces of %d: %v", size, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("pieces of %d: got %q, want %q", size, got, want)
		}
	}
	// Bytes after the close frame are dropped.
	got, err := readAll(append(maskedFrame(fin|opClose, nil), maskedFrame(fin|opText, []byte("x"))...), 4096, 1000)
	if err != nil || len(got) != 1 {
		t.Fatalf("after close: got %q, %v", got, err)
	}
}

func TestFrameReaderLimit(t *testing.T) {
	for _, tt := range []struct {
		name   string
		frames [][]byte
		err    *frameError
	}{
		{"at the limit", [][]byte{maskedFrame(fin|opText, bytes.Repeat([]byte("x"), 100))}, nil},
		{"over the limit", [][]byte{maskedFrame(fin|opText, bytes.Repeat([]byte("x"), 101))}, errTooBig},
		{"fragments at the limit", [][]byte{
			maskedFrame(opText, bytes.Repeat([]byte("x"), 60)),
			maskedFrame(fin|opContinuation, bytes.Repeat([]byte("x"), 40)),
		}, nil},
		{"fragments over the limit", [][]byte{
			maskedFrame(opText, bytes.Repeat([]byte("x"), 60)),
			maskedFrame(fin|opContinuation, bytes.Repeat([]byte("x"), 41)),
		}, errTooBig},
		{"64-bit length", [][]byte{maskedFrame(fin|opBinary, bytes.Repeat([]byte("x"), 70000))}, errTooBig},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The limit is checked on the header: the payload never comes.
			data := bytes.Join(tt.frames, nil)
			if tt.err != nil {
				data = data[:len(data)-1]
			}
			_, err := readAll(data, 4096, 100)
			if err != tt.err {
				t.Fatalf("got %v, want %v", err, tt.err)
			}
		})
	}
}

func TestFrameReaderProtocolErrors(t *testing.T) {
	unmasked := maskedFrame(fin|opText, []byte("hi"))
	unmasked[1] &^= 0x80
	for _, tt := range []struct {
		name string
		data []byte
		why  string
	}{
		{"unmasked", unmasked, "client frames must be masked"},
		{"reserved bit", maskedFrame(fin|0x40|opText, []byte("hi")), "reserved bits set"},
		{"unknown data opcode", maskedFrame(fin|0x3, nil), "unknown opcode"},
		{"unknown control opcode", maskedFrame(fin|0xb, nil), "invalid control frame"},
		{"fragmented control frame", maskedFrame(opPing, nil), "invalid control frame"},
		{"long control frame", maskedFrame(fin|opPing, bytes.Repeat([]byte("x"), 126)), "invalid control frame"},
		{"continuation first", maskedFrame(fin|opContinuation, []byte("hi")), "continuation frame without a message"},
		{"message inside a message", append(maskedFrame(opText, []byte("a")), maskedFrame(fin|opText, []byte("b"))...), "new message before the last one ended"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := frameReader{limit: 1000}
			err := r.read(tt.data, func(byte, []byte) bool { return true })
			if err == nil || err.code != websocket.CloseProtocolError || err.reason != tt.why {
				t.Fatalf("got %v, want 1002 %q", err, tt.why)
			}
			// What follows is dropped.
			if err := r.read(maskedFrame(fin|opText, []byte("x")), func(byte, []byte) bool {
				t.Fatalf("a frame after the error")
				return true
			}); err != nil {
				t.Fatalf("after the error: %v", err)
			}
		})
	}
}

func TestParseClose(t *testing.T) {
	for _, tt := range []struct {
		payload string
		code    int
		reason  string
		errCode int
	}{
		{"", websocket.CloseNoStatusReceived, "", 0},
		{"\x03\xe8", 1000, "", 0},
		{"\x0f\xa0bye", 4000, "bye", 0},
		{"\x03", 0, "", websocket.CloseProtocolError},
		{"\x03\xed", 0, "", websocket.CloseProtocolError}, // 1005 is never sent
		{"\x0b\xb7", 0, "", websocket.CloseProtocolError}, // 2999
		{"\x03\xe8\xff", 0, "", websocket.CloseInvalidFramePayloadData},
	} {
		code, reason, err := parseClose([]byte(tt.payload))
		switch {
		case tt.errCode != 0 && (err == nil || err.code != tt.errCode):
			t.Errorf("%q: got %v, want error %d", tt.payload, err, tt.errCode)
		case tt.errCode == 0 && (err != nil || code != tt.code || reason != tt.reason):
			t.Errorf("%q: got %d %q %v, want %d %q", tt.payload, code, reason, err, tt.code, tt.reason)
		}
	}
}

// FuzzFrameReader checks that the reader never panics, and hands out the
// same frames however the bytes are cut.
func FuzzFrameReader(f *testing.F) {
	f.Add(maskedFrame(fin|opText, []byte(`{"message":"hi"}`)), 3)
	f.Add(append(maskedFrame(opText, []byte("a")), maskedFrame(fin|opContinuation, []byte("b"))...), 1)
	f.Fuzz(func(t *testing.T, data []byte, size int) {
		if size < 1 || size > len(data) {
			size = max(len(data), 1)
		}
		whole, werr := readAll(data, len(data)+1, 200)
		cut, cerr := readAll(data, size, 200)
		if fmt.Sprint(whole, werr) != fmt.Sprint(cut, cerr) {
			t.Fatalf("whole: %q %v; in pieces of %d: %q %v", whole, werr, size, cut, cerr)
		}
	})
}

func TestFrameReaderUTF8(t *testing.T) {
	euro := []byte("€") // three bytes
	for _, tt := range []struct {
		name string
		data []byte
		ok   bool
	}{
		{"text", maskedFrame(fin|opText, []byte(`{"message":"€"}`)), true},
		{"invalid text", maskedFrame(fin|opText, []byte("{\"message\":\"\xff\"}")), false},
		{"truncated rune", maskedFrame(fin|opText, euro[:2]), false},
		{"surrogate", maskedFrame(fin|opText, []byte("\xed\xa0\x80")), false},
		{"rune across fragments", append(maskedFrame(opText, euro[:1]), maskedFrame(fin|opContinuation, euro[1:])...), true},
		{"invalid fragments", append(maskedFrame(opText, euro[:1]), maskedFrame(fin|opContinuation, euro[:1])...), false},
		{"binary", maskedFrame(fin|opBinary, []byte{0xff}), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAll(tt.data, 1, 1000)
			switch {
			case tt.ok && (err != nil || len(got) != 1):
				t.Fatalf("got %v, %v; want one message", got, err)
			case !tt.ok && (err == nil || err.code != websocket.CloseInvalidFramePayloadData || err.reason != "invalid utf-8" || len(got) != 0):
				t.Fatalf("got %v, %v; want 1007 \"invalid utf-8\"", got, err)
			}
		})
	}
}
