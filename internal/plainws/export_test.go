package plainws

// WithoutPoller makes h's sockets read on goroutines of their own, as
// they do where there is no epoll.
func WithoutPoller(h *Handler) { h.sockets.noPoller = true }

// AppendTextFrame is the writer's encoder of a text frame.
var AppendTextFrame = appendTextFrame
