package redisbroker

// The wire encoding, for the codec tests and benchmarks and the tests that
// publish malformed messages.
var (
	AppendEvent = appendEvent
	DecodeEvent = decodeEvent
	EncodedSize = encodedSize
)
