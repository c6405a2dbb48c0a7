package social

import (
	"errors"
	"fmt"
)

// Code classifies an Error. The GraphQL layer puts it into extensions.code.
// The constants below are all of pulse's own codes (gqlgen adds its
// GRAPHQL_* ones): clients act on them, so their values
// never change.
type Code string

// Error codes, as the public API names them.
const (
	CodeUnauthenticated Code = "UNAUTHENTICATED"
	CodeForbidden       Code = "FORBIDDEN"
	CodeNotFound        Code = "NOT_FOUND"
	CodeBadUserInput    Code = "BAD_USER_INPUT"
	CodeConflict        Code = "CONFLICT"
	CodeRateLimited     Code = "RATE_LIMITED"
	// CodeInternal is any error that is not an *Error: clients see
	// "internal error" and the server logs the cause.
	CodeInternal Code = "INTERNAL"
)

// Codes of failures that are no *Error: the GraphQL layer gives them to
// operations it ends itself.
const (
	// CodeSlowConsumer ends a subscription whose client could not keep up
	// (ErrSlowConsumer); extensions.after holds the id to resume from.
	CodeSlowConsumer Code = "SLOW_CONSUMER"
	// CodeUnavailable ends a subscription because the server is stopping
	// (ErrBrokerClosed); extensions.after holds the id to resume from.
	CodeUnavailable Code = "UNAVAILABLE"
	// CodeDepthLimitExceeded: the operation nests deeper than allowed;
	// nothing of it runs.
	CodeDepthLimitExceeded Code = "DEPTH_LIMIT_EXCEEDED"
	// CodeComplexityLimitExceeded: the operation's complexity is over the
	// limit (extensions.limit and extensions.complexity); nothing runs.
	CodeComplexityLimitExceeded Code = "COMPLEXITY_LIMIT_EXCEEDED"
	// CodeResourceLimitExceeded replaces a response that resolved more
	// fields, or grew bigger, than the server allows (extensions.limit).
	CodeResourceLimitExceeded Code = "RESOURCE_LIMIT_EXCEEDED"
	// CodeTimeout: the operation ran past the server's request timeout.
	CodeTimeout Code = "TIMEOUT"
	// CodeCancelled: the client left (or stopped the operation) first.
	CodeCancelled Code = "CANCELLED"
)

// Error is an error that is safe to show to the client: its Message is meant
// for the user and its Code says what kind of failure it is.
type Error struct {
	Code    Code
	Message string
	// Field names the input at fault, for CodeBadUserInput.
	Field string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (%s)", e.Code, e.Message, e.Field)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// InputError returns a CodeBadUserInput error about the named input field.
func InputError(field, format string, args ...any) *Error {
	return &Error{Code: CodeBadUserInput, Message: fmt.Sprintf(format, args...), Field: field}
}

// ErrorCode returns the code of err if it is or wraps an *Error, and
// CodeInternal otherwise. It returns "" for a nil error.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the user-facing message of err: the Message of an
// *Error, and "internal error" for anything else.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// Errors returned by a Subscription's Err, saying why its channel closed.
var (
	// ErrSlowConsumer: the subscriber's bounded queue was full, so the broker
	// cut it off rather than wait. Nothing is lost: the client resumes from
	// its last notification id.
	ErrSlowConsumer = errors.New("subscriber too slow")
	// ErrBrokerClosed: the broker shut down.
	ErrBrokerClosed = errors.New("broker closed")
)
