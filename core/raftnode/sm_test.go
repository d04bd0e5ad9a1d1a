package raftnode

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// testSM is the state machine of the tests: it appends every payload to a
// list and returns an index-stamped result for each; a payload "w:<v>"
// also sets a register to v (for the linearizability checks). With a path
// it persists every applied entry (JSON lines) so that a restarted node
// resumes from its own applied index.
type testSM struct {
	mu       sync.Mutex // guards all fields
	applied  uint64
	records  []testRecord
	register string
	restores int
	// violations lists contract breaches seen by Apply: an entry at or
	// below the applied index, or out of order.
	violations []string
	file       *os.File
}

type testRecord struct {
	Index   uint64 `json:"i"`
	Term    uint64 `json:"t"`
	Payload string `json:"p"`
}

// testSMState is the snapshot and file format.
type testSMState struct {
	Reset    bool         `json:"reset,omitempty"`
	Applied  uint64       `json:"applied"`
	Records  []testRecord `json:"records,omitempty"`
	Register string       `json:"register,omitempty"`
}

func newTestSM() *testSM { return &testSM{} }

// openTestSM loads (or creates) a persisted state machine at path.
func openTestSM(path string) (*testSM, error) {
	sm := &testSM{}
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var st testSMState
		if err := json.Unmarshal(sc.Bytes(), &st); err != nil {
			// A torn last line: what was not written was not applied.
			break
		}
		if st.Reset {
			sm.records = nil
		}
		sm.records = append(sm.records, st.Records...)
		sm.applied = st.Applied
		if st.Register != "" || st.Reset {
			sm.register = st.Register
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	sm.file = f
	return sm, nil
}

func (s *testSM) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil {
		return nil
	}
	err := s.file.Close()
	s.file = nil
	return err
}

func (s *testSM) Apply(entries []Entry) [][][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][][]byte, len(entries))
	var batch testSMState
	for i, e := range entries {
		if e.Index <= s.applied {
			s.violations = append(s.violations, fmt.Sprintf("entry %d passed at applied index %d", e.Index, s.applied))
		}
		s.applied = e.Index
		if len(e.Payloads) == 0 {
			continue
		}
		out[i] = make([][]byte, len(e.Payloads))
		for j, p := range e.Payloads {
			rec := testRecord{Index: e.Index, Term: e.Term, Payload: string(p)}
			s.records = append(s.records, rec)
			batch.Records = append(batch.Records, rec)
			if v, ok := strings.CutPrefix(rec.Payload, "w:"); ok {
				s.register = v
			}
			out[i][j] = fmt.Appendf(nil, "%d/%d:%s", e.Index, j, p)
		}
	}
	if s.file != nil {
		batch.Applied = s.applied
		batch.Register = s.register
		line, _ := json.Marshal(batch)
		if _, err := s.file.Write(append(line, '\n')); err != nil {
			panic(err)
		}
	}
	return out
}

func (s *testSM) AppliedIndex() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied
}

func (s *testSM) Snapshot() (Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := testSMState{Applied: s.applied, Records: slices.Clone(s.records), Register: s.register}
	data, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	return bytesSnapshot(data), nil
}

func (s *testSM) Restore(r io.Reader) error {
	var st testSMState
	if err := json.NewDecoder(r).Decode(&st); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied, s.records, s.register = st.Applied, st.Records, st.Register
	s.restores++
	if s.file != nil {
		st.Reset = true
		line, _ := json.Marshal(st)
		if _, err := s.file.Write(append(line, '\n')); err != nil {
			return err
		}
	}
	return nil
}

// Register returns the register's value (a local, serializable read).
func (s *testSM) Register() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.register
}

func (s *testSM) Records() []testRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.records)
}

func (s *testSM) Restores() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restores
}

func (s *testSM) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.violations)
}

type bytesSnapshot []byte

func (b bytesSnapshot) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(b)
	return int64(n), err
}

func (bytesSnapshot) Release() {}

var _ StateMachine = (*testSM)(nil)

func removeFile(path string) error { return os.Remove(path) }
