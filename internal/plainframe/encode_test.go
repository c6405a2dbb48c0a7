package plainframe_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/plainframe"
	"github.com/pulse-social/pulse/internal/social"
)

func TestAppendFrame(t *testing.T) {
	at := time.Date(2026, 11, 25, 17, 3, 0, 0, time.UTC)
	tests := []struct {
		name string
		n    social.Notification
		want map[string]any
	}{{
		name: "reaction",
		n: social.Notification{ID: 5012, Message: "John reacted to your comment", Action: social.ActionReaction, ActionID: 23,
			ByUser: "John", ActionContent: "laugh", Affected: social.ContentComment, AffectedID: 79, CreatedAt: at},
		want: map[string]any{"id": "5012", "message": "John reacted to your comment", "action": "reaction", "action_id": "23",
			"by_user": "John", "action_content": "laugh", "affected": "comment", "affected_id": "79", "created_at": "2026-11-25T17:03:00Z"},
	}, {
		name: "following has nulls",
		n:    social.Notification{ID: 7, Message: "Oliver started following you", Action: social.ActionFollowing, ActionID: 3, ByUser: "Oliver", CreatedAt: at},
		want: map[string]any{"id": "7", "message": "Oliver started following you", "action": "following", "action_id": "3",
			"by_user": "Oliver", "action_content": nil, "affected": nil, "affected_id": nil, "created_at": "2026-11-25T17:03:00Z"},
	}, {
		name: "content is escaped",
		n:    social.Notification{ID: 8, Message: "m", Action: social.ActionPost, ActionID: 4, ByUser: "u", ActionContent: "a \"quoted\"\nline <b>\u2028", CreatedAt: at},
		want: map[string]any{"id": "8", "message": "m", "action": "post", "action_id": "4",
			"by_user": "u", "action_content": "a \"quoted\"\nline <b>\u2028", "affected": nil, "affected_id": nil, "created_at": "2026-11-25T17:03:00Z"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got map[string]any
			b := plainframe.AppendNotification(nil, &tt.n)
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("frame %s is not JSON: %v", b, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestMessageFrame(t *testing.T) {
	var got map[string]any
	if err := json.Unmarshal(plainframe.MessageFrame("hi \"there\""), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["message"] != "hi \"there\"" {
		t.Fatalf("got %v", got)
	}
}

func FuzzAppendFrameStrings(f *testing.F) {
	for _, s := range []string{"", "plain text", `a "quoted" \\ line`, "<b>&amp;</b>", "tab\tnew\nline", "é日本", "\u2028\u2029", "\xff\xfe", "a\x00b", "\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := social.Notification{ID: 1, Message: s, Action: social.ActionPost, ActionID: 2, ByUser: s, ActionContent: s + "x"}
		got := string(plainframe.AppendNotification(nil, &n))
		q, _ := json.Marshal(s)
		qx, _ := json.Marshal(s + "x")
		for _, want := range []string{`"message":` + string(q) + `,`, `"by_user":` + string(q) + `,`, `"action_content":` + string(qx) + `,`} {
			if !strings.Contains(got, want) {
				t.Fatalf("frame %s does not contain %s", got, want)
			}
		}
	})
}
