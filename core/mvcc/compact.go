package mvcc

import (
	"bytes"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/concordkv/concord/core/backend"
)

// Compact schedules a compaction at req.Revision and returns at once, or
// with req.Physical after the rows are gone from the backend. It never
// bumps the revision. rev <= CompactRevision → ErrCompacted; rev > Rev →
// ErrFutureRev. From the moment it returns, reads below rev fail with
// ErrCompacted. The scheduled revision is written to the meta bucket as
// part of this apply; the removal itself runs in the background in steps of
// Config.CompactionBatch keys, letting writes in between, and an
// interrupted one resumes on the next Open. Writer goroutine only.
func (s *Store) Compact(req *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	s.writeMu.Lock()
	if s.closed {
		s.writeMu.Unlock()
		return nil, ErrClosed
	}
	rev := req.Revision
	switch {
	case rev <= s.compactRev:
		s.writeMu.Unlock()
		return nil, ErrCompacted
	case rev > s.currentRev:
		s.writeMu.Unlock()
		return nil, ErrFutureRev
	}
	s.compactRev = rev
	s.be.Put(backend.MetaBucket, scheduledCompactKey, encodeRev(rev))
	s.publishLocked()
	job := compactJob{rev: rev, done: make(chan struct{})}
	s.jobs = append(s.jobs, job)
	resp := &pb.CompactionResponse{Header: &pb.ResponseHeader{Revision: s.currentRev}}
	s.writeMu.Unlock()

	select {
	case s.wakeCompactor <- struct{}{}:
	default:
	}
	if req.Physical {
		select {
		case <-job.done:
		case <-s.stop:
		}
	}
	return resp, nil
}

// runCompactor is the background goroutine that removes compacted
// revisions; owned by the Store, stopped by Close.
func (s *Store) runCompactor() {
	for {
		s.writeMu.Lock()
		var job compactJob
		have := len(s.jobs) > 0
		if have {
			job = s.jobs[0]
			s.jobs = s.jobs[1:]
		}
		s.writeMu.Unlock()
		if !have {
			select {
			case <-s.stop:
				return
			case <-s.wakeCompactor:
				continue
			}
		}
		if !s.compactIndexAndRows(job.rev) {
			return // stopped; the job resumes on the next Open
		}
		close(job.done)
	}
}

// compactIndexAndRows compacts every key at rev in steps, each holding
// writeMu for at most CompactionBatch keys or deleted rows. It reports
// false if the store was closed before it finished.
func (s *Store) compactIndexAndRows(rev int64) bool {
	var after []byte // last key handled; nil = start
	for {
		select {
		case <-s.stop:
			return false
		default:
		}
		s.writeMu.Lock()
		if s.closed {
			s.writeMu.Unlock()
			return false
		}
		var batch []*keyIndex
		pivot := &keyIndex{key: after}
		s.idx.AscendGreaterOrEqual(pivot, func(ki *keyIndex) bool {
			if after != nil && bytes.Equal(ki.key, after) {
				return true
			}
			batch = append(batch, ki)
			return len(batch) < s.cfg.CompactionBatch
		})
		rows := 0
		for _, ki := range batch {
			after = ki.key
			nk, dropped := ki.compacted(rev)
			if len(dropped) == 0 {
				continue
			}
			for _, d := range dropped {
				s.be.DeleteIdempotent(KeyBucket, revToBytes(d.rev, d.tombstone))
			}
			if nk == nil {
				s.idx.Delete(ki)
			} else {
				s.idx.ReplaceOrInsert(nk)
			}
			rows += len(dropped)
			if rows >= s.cfg.CompactionBatch {
				break
			}
		}
		finished := len(batch) == 0
		if finished {
			s.be.PutIdempotent(backend.MetaBucket, finishedCompactKey, encodeRev(rev))
			s.log.Debug("mvcc: compaction finished", "rev", rev)
		}
		s.publishLocked()
		s.writeMu.Unlock()
		if finished {
			return true
		}
	}
}
