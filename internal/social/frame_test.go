package social_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

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
			b := social.AppendFrame(nil, &tt.n)
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
	if err := json.Unmarshal(social.MessageFrame("hi \"there\""), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["message"] != "hi \"there\"" {
		t.Fatalf("got %v", got)
	}
}

func TestAppendFrames(t *testing.T) {
	at := time.Date(2026, 11, 25, 17, 3, 0, 123456789, time.UTC)
	ns := []social.Notification{
		{ID: 1<<62 + 5, Message: "John reacted to your comment", Action: social.ActionReaction, ActionID: 1<<62 + 1,
			ByUser: "John", ActionContent: "laugh", Affected: social.ContentComment, AffectedID: 1<<62 + 2, CreatedAt: at},
		{ID: 7, Message: "Oliver started following you", Action: social.ActionFollowing, ActionID: 3, ByUser: "Oliver", CreatedAt: at},
		// Escapes make the frame longer than the hint.
		{ID: 8, Message: "m", Action: social.ActionPost, ActionID: 4, ByUser: "u", ActionContent: strings.Repeat("<\"\n", 200), CreatedAt: at},
		{ID: 9, Message: "m", Action: social.ActionPost, ActionID: 5, ByUser: "u", ActionContent: "short", CreatedAt: at},
	}
	frames := social.AppendFrames(nil, ns)
	if len(frames) != len(ns) {
		t.Fatalf("got %d frames, want %d", len(frames), len(ns))
	}
	for i := range ns {
		if want := social.AppendFrame(nil, &ns[i]); string(frames[i]) != string(want) {
			t.Errorf("frame %d: got %s, want %s", i, frames[i], want)
		}
	}
	// Appending to a frame must not overwrite the next one.
	_ = append(frames[0], "xxxxxxxx"...)
	if want := social.AppendFrame(nil, &ns[1]); string(frames[1]) != string(want) {
		t.Errorf("frame 1 changed by an append to frame 0: %s", frames[1])
	}
}

// BenchmarkFrames encodes the frames of a post to 10,000 followers.
func BenchmarkFrames(b *testing.B) {
	ns := make([]social.Notification, 10000)
	for i := range ns {
		ns[i] = social.Notification{ID: int64(1000000 + i), RecipientID: int64(i), Message: "author123 published a post",
			Action: social.ActionPost, ActionID: 987654, ByUser: "author123", ActionContent: "w2 graphql n=10000 abcdefghijklmnopqrstuv",
			CreatedAt: time.Now()}
	}
	b.Run("one by one", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for i := range ns {
				_ = social.AppendFrame(nil, &ns[i])
			}
		}
	})
	b.Run("AppendFrames", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = social.AppendFrames(nil, ns)
		}
	})
}

// FuzzAppendFrameStrings checks that a frame's strings are encoded as
// encoding/json encodes them.
func FuzzAppendFrameStrings(f *testing.F) {
	for _, s := range []string{"", "plain text", `a "quoted" \\ line`, "<b>&amp;</b>", "tab\tnew\nline", "é日本", "\u2028\u2029", "\xff\xfe", "a\x00b", "\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := social.Notification{ID: 1, Message: s, Action: social.ActionPost, ActionID: 2, ByUser: s, ActionContent: s + "x"}
		got := string(social.AppendFrame(nil, &n))
		q, _ := json.Marshal(s)
		qx, _ := json.Marshal(s + "x")
		for _, want := range []string{`"message":` + string(q) + `,`, `"by_user":` + string(q) + `,`, `"action_content":` + string(qx) + `,`} {
			if !strings.Contains(got, want) {
				t.Fatalf("frame %s does not contain %s", got, want)
			}
		}
	})
}
