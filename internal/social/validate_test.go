package social_test

import (
	"strings"
	"testing"

	"github.com/pulse-social/pulse/internal/social"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		field string // "" when the input is valid
	}{
		{"UsernameOK", social.ValidateUsername("username", "John_99"), ""},
		{"UsernameShortest", social.ValidateUsername("username", "abc"), ""},
		{"UsernameLongest", social.ValidateUsername("username", strings.Repeat("a", 30)), ""},
		{"UsernameTooShort", social.ValidateUsername("username", "ab"), "username"},
		{"UsernameTooLong", social.ValidateUsername("username", strings.Repeat("a", 31)), "username"},
		{"UsernameBadChar", social.ValidateUsername("username", "john-doe"), "username"},
		{"UsernameNonASCII", social.ValidateUsername("username", "jöhn"), "username"},
		{"UsernameSpace", social.ValidateUsername("username", "jo hn"), "username"},
		{"PasswordShortest", social.ValidatePassword("password", "12345678"), ""},
		{"PasswordLongest", social.ValidatePassword("password", strings.Repeat("x", 72)), ""},
		{"PasswordTooShort", social.ValidatePassword("password", "1234567"), "password"},
		{"PasswordTooLong", social.ValidatePassword("password", strings.Repeat("x", 73)), "password"},
		{"PasswordBytesNotRunes", social.ValidatePassword("password", strings.Repeat("é", 37)), "password"},
		{"BodyOK", social.ValidateText("body", "hello", 5000), ""},
		{"BodyLongest", social.ValidateText("body", strings.Repeat("é", 5000), 5000), ""},
		{"BodyTooLong", social.ValidateText("body", strings.Repeat("a", 5001), 5000), "body"},
		{"BodyEmpty", social.ValidateText("body", "", 5000), "body"},
		{"BodyBlank", social.ValidateText("body", " \n\t", 5000), "body"},
		{"BodyInvalidUTF8", social.ValidateText("body", "\xff", 5000), "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.field == "" {
				if tt.err != nil {
					t.Fatalf("unexpected error %v", tt.err)
				}
				return
			}
			e, ok := tt.err.(*social.Error)
			if !ok || e.Code != social.CodeBadUserInput || e.Field != tt.field {
				t.Fatalf("got %v, want BAD_USER_INPUT on %s", tt.err, tt.field)
			}
		})
	}
}

func TestTokenFromAuthorization(t *testing.T) {
	for in, want := range map[string]string{
		"Bearer abc":   "abc",
		"bearer abc":   "abc",
		"BEARER  abc ": "abc",
		"abc":          "abc",
		" abc ":        "abc",
		"":             "",
	} {
		if got := social.TokenFromAuthorization(in); got != want {
			t.Errorf("TokenFromAuthorization(%q) = %q, want %q", in, got, want)
		}
	}
}
