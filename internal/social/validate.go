package social

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Input limits of the public API.
const (
	UsernameMinLen    = 3
	UsernameMaxLen    = 30
	PasswordMinBytes  = 8
	PasswordMaxBytes  = 72 // bcrypt's limit
	PostBodyMaxLen    = 5000
	CommentBodyMaxLen = 2000
	// MessageMaxBytes bounds a plain socket message's text.
	MessageMaxBytes = 60 << 10
)

// ValidateUsername checks the username rules: 3 to 30 of [A-Za-z0-9_].
func ValidateUsername(field, name string) error {
	if n := len(name); n < UsernameMinLen || n > UsernameMaxLen {
		return InputError(field, "username must be %d to %d characters long", UsernameMinLen, UsernameMaxLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return InputError(field, "username may only contain letters, digits and underscores")
		}
	}
	return nil
}

// ValidatePassword checks the password rules: 8 to 72 bytes.
func ValidatePassword(field, password string) error {
	if n := len(password); n < PasswordMinBytes || n > PasswordMaxBytes {
		return InputError(field, "password must be %d to %d bytes long", PasswordMinBytes, PasswordMaxBytes)
	}
	return nil
}

// ValidateText checks a post or comment body: valid UTF-8, with at least
// one visible character (see visible), at most max characters.
func ValidateText(field, text string, max int) error {
	if !utf8.ValidString(text) {
		return InputError(field, "%s must be valid UTF-8", field)
	}
	if text == "" {
		return InputError(field, "%s must not be empty", field)
	}
	if strings.IndexFunc(text, visible) < 0 {
		return InputError(field, "%s must contain a visible character, not only spaces or invisible ones", field)
	}
	if utf8.RuneCountInString(text) > max {
		return InputError(field, "%s must be at most %d characters long", field, max)
	}
	return nil
}

// visible reports whether r shows as something: it is not white space of
// any kind, a control or format character (zero-width ones, the BOM, bidi
// controls, tags), a variation selector, another default-ignorable code
// point (such as the Hangul fillers) or the blank braille pattern.
// Unassigned code points count as visible: they may be newer emoji.
func visible(r rune) bool {
	return !unicode.In(r, invisible...) && r != '\u2800'
}

// invisible are the tables of the runes that visible refuses.
var invisible = []*unicode.RangeTable{
	unicode.White_Space, unicode.Cc, unicode.Cf, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point,
}
