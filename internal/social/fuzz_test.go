package social_test

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pulse-social/pulse/internal/social"
)

var usernameRE = regexp.MustCompile(`^[A-Za-z0-9_]{3,30}$`)

// FuzzValidate checks the input rules of the API against their plain
// statement on any input: username 3 to 30 of [A-Za-z0-9_], password 8 to
// 72 bytes, a body valid UTF-8, not blank, at most max characters; and that
// a refusal is always BAD_USER_INPUT naming the field. Seeds:
// testdata/fuzz/FuzzValidate and the f.Add calls.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{"", "ab", "abc", "Oliver_99", "a b", "émile", strings.Repeat("x", 30), strings.Repeat("x", 31),
		"password", strings.Repeat("p", 72), strings.Repeat("p", 73), "   ", "\t\n", "\xff\xfe", "日本語のテキスト", "a\x00b"} {
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
			want := utf8.ValidString(s) && strings.TrimSpace(s) != "" && utf8.RuneCountInString(s) <= max
			check("ValidateText", social.ValidateText("f", s, max), want)
		}
	})
}

func asError(err error, target **social.Error) bool {
	e, ok := err.(*social.Error)
	*target = e
	return ok
}
