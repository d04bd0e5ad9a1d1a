package backend

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Config holds everything a Backend needs; set it fully before Open.
type Config struct {
	// Path is the bbolt file. Its directory must exist.
	Path string
	// BatchInterval is the longest time a write stays buffered in memory
	// before the background flusher commits it to bbolt (default 100ms).
	BatchInterval time.Duration
	// BatchLimit is the number of buffered writes that makes the flusher
	// commit before BatchInterval has passed (default 10,000).
	BatchLimit int
	// InitialMmapSize is the initial mmap size of the bbolt file in bytes
	// (default 2 GiB). A file that outgrows it is remapped, which waits for
	// every open read transaction; a large value makes that rare.
	InitialMmapSize int
	// Logger receives operational messages (discarded by default).
	Logger *slog.Logger
}

// DefaultConfig returns a Config for path with every default filled in.
func DefaultConfig(path string) Config {
	return Config{
		Path:            path,
		BatchInterval:   100 * time.Millisecond,
		BatchLimit:      10_000,
		InitialMmapSize: 2 << 30,
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	switch {
	case c.Path == "":
		return errors.New("backend config: Path is empty")
	case c.BatchInterval <= 0:
		return fmt.Errorf("backend config: BatchInterval %v must be positive", c.BatchInterval)
	case c.BatchLimit <= 0:
		return fmt.Errorf("backend config: BatchLimit %d must be positive", c.BatchLimit)
	case c.InitialMmapSize < 0:
		return fmt.Errorf("backend config: InitialMmapSize %d must not be negative", c.InitialMmapSize)
	case c.Logger == nil:
		return errors.New("backend config: Logger is nil (use DefaultConfig)")
	}
	return nil
}
