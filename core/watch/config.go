package watch

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// MinProgressNotifyInterval is the smallest ProgressNotifyInterval accepted,
// as in etcd (which raises smaller values to it).
const MinProgressNotifyInterval = 100 * time.Millisecond

// Config configures a Hub. Set everything before New; the hub never changes
// it.
type Config struct {
	// Source is the store the hub reads history from. Required.
	Source EventSource
	// Logger receives warnings (source errors, out-of-order Notify).
	// Default: discard.
	Logger *slog.Logger
	// IsCompacted tells whether an error from Source.Events means the
	// requested revision is compacted. Default: errors.Is(err,
	// ErrCompacted).
	IsCompacted func(error) bool

	// StreamBufferEvents bounds the events queued on one Stream and not yet
	// received from Chan. A watcher whose next response does not fit falls
	// back to catch-up from Source instead of growing the queue; a single
	// response larger than the bound is queued only when the queue is
	// empty. Default 1024.
	StreamBufferEvents int
	// MaxPendingControl bounds the client-initiated control responses
	// (created, canceled, progress) queued on one Stream; Watch, Cancel and
	// RequestProgress wait for room (the consumer reading Chan) beyond it.
	// Default 64.
	MaxPendingControl int
	// CatchUpBatchEvents is the most events read from Source for one
	// watcher (or one group of watchers sharing a range and position) in
	// one catch-up step; a response never holds more (except one revision
	// that alone is larger). Default 1000.
	CatchUpBatchEvents int
	// CatchUpWatchers is the most watchers served in one catch-up round,
	// which bounds the history held in memory at once to about
	// CatchUpWatchers × CatchUpBatchEvents events. Default 512.
	CatchUpWatchers int
	// CatchUpRetryInterval is how long catch-up waits after Source.Events
	// failed with an error other than compaction. Default 100ms.
	CatchUpRetryInterval time.Duration

	// ProgressNotifyInterval is how often watchers created with
	// progress_notify get an empty response carrying the current revision
	// while they are synced and received no events. Each stream adds up to
	// 10% random jitter, as etcd does. Default 10 minutes (etcd's).
	ProgressNotifyInterval time.Duration
	// MaxFragmentBytes is the encoded size above which a response for a
	// watcher created with fragment is split into several responses, all
	// but the last flagged Fragment. Default 1.5 MiB (etcd's request limit;
	// etcd itself splits at that limit plus 512 KiB of gRPC overhead).
	MaxFragmentBytes int
}

// DefaultConfig returns a Config with every default set; only Source is left
// to fill in.
func DefaultConfig() Config {
	return Config{
		Logger:                 slog.New(slog.NewTextHandler(io.Discard, nil)),
		IsCompacted:            func(err error) bool { return errors.Is(err, ErrCompacted) },
		StreamBufferEvents:     1024,
		MaxPendingControl:      64,
		CatchUpBatchEvents:     1000,
		CatchUpWatchers:        512,
		CatchUpRetryInterval:   100 * time.Millisecond,
		ProgressNotifyInterval: 10 * time.Minute,
		MaxFragmentBytes:       3 * 1024 * 1024 / 2,
	}
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	switch {
	case c.Source == nil:
		return errors.New("watch config: Source is required")
	case c.Logger == nil:
		return errors.New("watch config: Logger is nil (use DefaultConfig)")
	case c.IsCompacted == nil:
		return errors.New("watch config: IsCompacted is nil (use DefaultConfig)")
	case c.StreamBufferEvents < 1:
		return fmt.Errorf("watch config: StreamBufferEvents %d < 1", c.StreamBufferEvents)
	case c.MaxPendingControl < 1:
		return fmt.Errorf("watch config: MaxPendingControl %d < 1", c.MaxPendingControl)
	case c.CatchUpBatchEvents < 1:
		return fmt.Errorf("watch config: CatchUpBatchEvents %d < 1", c.CatchUpBatchEvents)
	case c.CatchUpWatchers < 1:
		return fmt.Errorf("watch config: CatchUpWatchers %d < 1", c.CatchUpWatchers)
	case c.CatchUpRetryInterval <= 0:
		return fmt.Errorf("watch config: CatchUpRetryInterval %v <= 0", c.CatchUpRetryInterval)
	case c.ProgressNotifyInterval < MinProgressNotifyInterval:
		return fmt.Errorf("watch config: ProgressNotifyInterval %v below the minimum %v", c.ProgressNotifyInterval, MinProgressNotifyInterval)
	case c.MaxFragmentBytes < 1:
		return fmt.Errorf("watch config: MaxFragmentBytes %d < 1", c.MaxFragmentBytes)
	}
	return nil
}
