package hookd

import (
	"errors"
	"fmt"
)

// Error codes. Each is the stable machine code shown to API users; httpapi maps each
// one to an HTTP status in a single table.
const (
	EINVALID      = "invalid_field"          // a field is missing, has the wrong type or an unacceptable value
	EINVALIDJSON  = "invalid_json"           // the body is not valid JSON
	ENOTFOUND     = "not_found"              // the object does not exist or belongs to another organization
	ECONFLICT     = "conflict"               // the object already exists
	EUNAUTHORIZED = "unauthorized"           // missing or wrong API key
	EFORBIDDEN    = "forbidden"              // the key may not perform this action
	ETOOLARGE     = "payload_too_large"      // the body exceeds the configured limit
	EQUOTA        = "quota_exceeded"         // the organization's monthly quota is used up
	ERATELIMIT    = "rate_limited"           // too many requests
	EMEDIATYPE    = "unsupported_media_type" // the body is not application/json
	EINTERNAL     = "internal_error"         // anything else; details are logged, not shown
)

// Error is a domain failure that is safe to show to an API user. Internal failures are
// plain wrapped errors and are shown as "internal error".
type Error struct {
	Code    string // one of the E* constants
	Message string // a sentence for people
	Field   string // the offending field, for EINVALID
}

// Error implements the error interface.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns an EINVALID *Error naming field.
func FieldError(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

// NotFound returns an ENOTFOUND *Error for the named kind of object.
func NotFound(kind, id string) *Error {
	return &Error{Code: ENOTFOUND, Message: fmt.Sprintf("%s %q not found", kind, id)}
}

// ErrorCode returns the code of the *Error in err's chain, EINTERNAL for any other
// non-nil error and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return EINTERNAL
	}
}

// ErrorMessage returns the user-facing message of err: the *Error's message, or
// "internal error" for any other error.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
