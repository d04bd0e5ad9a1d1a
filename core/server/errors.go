package server

import "errors"

// Errors callers branch on; the API edge maps them to etcd's gRPC errors.
var (
	ErrRequestTooLarge   = errors.New("server: request is too large")
	ErrMemberNotFound    = errors.New("server: member not found")
	ErrMemberExists      = errors.New("server: member ID already exists")
	ErrPeerURLExists     = errors.New("server: peer URL already exists")
	ErrMemberNotLearner  = errors.New("server: can only promote a learner member")
	ErrTooManyLearners   = errors.New("server: too many learner members in cluster")
	ErrBadURLs           = errors.New("server: given member URLs are invalid")
	ErrNotEnoughStarted  = errors.New("server: re-configuration failed due to not enough started members")
	ErrStopped           = errors.New("server: stopped")
	ErrClusterIDMismatch = errors.New("server: cluster ID mismatch")
	// errUnknownRequest is applied when an entry holds no request this
	// version knows: every member answers it the same way.
	errUnknownRequest = errors.New("server: unknown request in raft entry")
)
