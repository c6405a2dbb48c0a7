package social_test

import (
	"context"
	"errors"
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
		{"BodyZeroWidthSpace", social.ValidateText("body", "\u200b", 5000), "body"},
		{"BodyZeroWidthOnly", social.ValidateText("body", "\u200b\u200c\u200d\u2060\ufeff\u00ad", 5000), "body"},
		{"BodyBOM", social.ValidateText("body", "\ufeff", 5000), "body"},
		{"BodyControls", social.ValidateText("body", "\x00\x07\x1b\u0085", 5000), "body"},
		{"BodyUnicodeSpaces", social.ValidateText("body", "\u00a0\u2003\u202f\u205f\u3000\u2028\u2029", 5000), "body"},
		{"BodyFillers", social.ValidateText("body", "\u3164\u115f\uffa0\u2800", 5000), "body"},
		{"BodyVariationSelectors", social.ValidateText("body", "\ufe0f\U000e0100\u034f", 5000), "body"},
		{"BodyBidiControls", social.ValidateText("body", "\u200e\u200f\u202e\u2066", 5000), "body"},
		{"BodyTags", social.ValidateText("body", "\U000e0041\U000e007f", 5000), "body"},
		{"BodyInvisibleAroundText", social.ValidateText("body", "\u200bhi\u200b", 5000), ""},
		{"BodyEmoji", social.ValidateText("body", "\U0001f44d", 5000), ""},
		{"BodyEmojiSequence", social.ValidateText("body", "\U0001f469\u200d\U0001f4bb\ufe0f", 5000), ""},
		{"BodyFlag", social.ValidateText("body", "\U0001f1eb\U0001f1f7", 5000), ""},
		{"BodyCJK", social.ValidateText("body", "日本語のテキスト", 5000), ""},
		{"BodyRTL", social.ValidateText("body", "\u202bשלום עולם\u202c", 5000), ""},
		{"BodyArabic", social.ValidateText("body", "مرحبا", 5000), ""},
		{"BodyDigit", social.ValidateText("body", "1", 5000), ""},
		{"BodyPunctuation", social.ValidateText("body", " . ", 5000), ""},
		{"BodyLongestWithInvisible", social.ValidateText("body", "a"+strings.Repeat("\u200b", 4999), 5000), ""},
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

// TestInvisibleBodies checks that a post or comment made only of invisible
// characters is refused with BAD_USER_INPUT on its body, and stores nothing.
func TestInvisibleBodies(t *testing.T) {
	ctx := context.Background()
	svc, _ := MustService(t)
	alice := MustRegister(t, svc, "alice")
	post, err := svc.CreatePost(ctx, alice, "visible")
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"\u200b", "\u200b\u200b", "\ufeff", " \u2060\u00a0", "\u3164", "\u2800"} {
		_, err := svc.CreatePost(ctx, alice, body)
		MustInputError(t, err, "body")
		_, err = svc.CreateComment(ctx, alice, post.ID, body, 0)
		MustInputError(t, err, "body")
	}
	for _, body := range []string{"\U0001f44d", "日本語", "שלום", "\u200bok"} {
		if _, err := svc.CreatePost(ctx, alice, body); err != nil {
			t.Errorf("post %q: %v", body, err)
		}
		if _, err := svc.CreateComment(ctx, alice, post.ID, body, 0); err != nil {
			t.Errorf("comment %q: %v", body, err)
		}
	}
	if cs, err := svc.Comments(ctx, post.ID, social.DefaultListPage, 0); err != nil || len(cs) != 4 {
		t.Fatalf("comments: %d, %v; want the 4 visible ones", len(cs), err)
	}
}

// MustInputError checks that err is BAD_USER_INPUT on field.
func MustInputError(tb testing.TB, err error, field string) {
	tb.Helper()
	var e *social.Error
	if !errors.As(err, &e) || e.Code != social.CodeBadUserInput || e.Field != field {
		tb.Fatalf("got %v, want BAD_USER_INPUT on %s", err, field)
	}
}
