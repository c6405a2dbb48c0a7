package social_test

import (
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/pulse-social/pulse/internal/social"
)

var usernameRE = regexp.MustCompile(`^[A-Za-z0-9_]{3,30}$`)

// FuzzValidate checks the input rules of the API against their plain
// statement on any input: username 3 to 30 of [A-Za-z0-9_], password 8 to
// 72 bytes, a body valid UTF-8 and at most max characters, accepted with a
// printable Latin-1 character or a CJK ideograph, refused if made only of
// spaces, controls and format characters (zero-width ones among them); and
// that a refusal is always BAD_USER_INPUT naming the field. Seeds:
// testdata/fuzz/FuzzValidate and the f.Add calls.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{"", "ab", "abc", "Oliver_99", "a b", "émile", strings.Repeat("x", 30), strings.Repeat("x", 31),
		"password", strings.Repeat("p", 72), strings.Repeat("p", 73), "   ", "\t\n", "\xff\xfe", "日本語のテキスト", "a\x00b",
		"\u200b", "\ufeff\u200d", "\u00a0\u3000", "\U0001f44d", "\u200bx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		check := func(rule string, err error, want bool) {
			t.Helper()
			if (err == nil) != want {
				t.Fatalf("%s(%q) = %v, want ok %v", rule, s, err, want)
			}
			if err != nil {
				var e *social.Error
				if social.ErrorCode(err) != social.CodeBadUserInput || !asError(err, &e) || e.Field != "f" {
					t.Fatalf("%s(%q) = %#v, want BAD_USER_INPUT on field f", rule, s, err)
				}
			}
		}
		check("ValidateUsername", social.ValidateUsername("f", s), usernameRE.MatchString(s))
		check("ValidatePassword", social.ValidatePassword("f", s), len(s) >= 8 && len(s) <= 72)
		for _, max := range []int{social.CommentBodyMaxLen, social.PostBodyMaxLen, 5} {
			err := social.ValidateText("f", s, max)
			check("ValidateText", err, err == nil) // a refusal's code and field
			fits := utf8.ValidString(s) && utf8.RuneCountInString(s) <= max
			switch {
			case fits && strings.IndexFunc(s, plainlyVisible) >= 0:
				check("ValidateText", err, true)
			case !fits || strings.IndexFunc(s, plainlyVisible) < 0 && strings.TrimFunc(s, plainlyInvisible) == "":
				check("ValidateText", err, false)
			}
		}
	})
}

// plainlyVisible is a rune every font shows.
func plainlyVisible(r rune) bool {
	return r > ' ' && r < 0x7f || r >= 0xa1 && r <= 0xff && r != 0xad || unicode.Is(unicode.Han, r)
}

// plainlyInvisible is a rune that shows as nothing.
func plainlyInvisible(r rune) bool {
	return unicode.IsSpace(r) || unicode.In(r, unicode.Cc, unicode.Cf)
}

func asError(err error, target **social.Error) bool {
	e, ok := err.(*social.Error)
	*target = e
	return ok
}
