package lease

import (
	"container/heap"
	"time"
)

// timerQueue orders leases by a time (an expiry or a checkpoint due time),
// with at most one entry per lease: setting a lease's time again moves its
// entry. Not safe for concurrent use; the Lessor guards it with its mutex.
type timerQueue struct {
	h    timerHeap
	byID map[int64]*timer
}

type timer struct {
	id    int64
	at    time.Time
	index int
}

func newTimerQueue() *timerQueue { return &timerQueue{byID: make(map[int64]*timer)} }

func (q *timerQueue) Len() int { return len(q.h) }

// Set schedules lease id at at, replacing its previous time.
func (q *timerQueue) Set(id int64, at time.Time) {
	if t, ok := q.byID[id]; ok {
		t.at = at
		heap.Fix(&q.h, t.index)
		return
	}
	t := &timer{id: id, at: at}
	q.byID[id] = t
	heap.Push(&q.h, t)
}

// Remove unschedules lease id, if scheduled.
func (q *timerQueue) Remove(id int64) {
	if t, ok := q.byID[id]; ok {
		heap.Remove(&q.h, t.index)
		delete(q.byID, id)
	}
}

// Peek returns the earliest entry.
func (q *timerQueue) Peek() (id int64, at time.Time, ok bool) {
	if len(q.h) == 0 {
		return 0, time.Time{}, false
	}
	return q.h[0].id, q.h[0].at, true
}

// PopDue removes and returns the earliest entry if it is due at now.
func (q *timerQueue) PopDue(now time.Time) (int64, bool) {
	if len(q.h) == 0 || q.h[0].at.After(now) {
		return 0, false
	}
	t := heap.Pop(&q.h).(*timer)
	delete(q.byID, t.id)
	return t.id, true
}

type timerHeap []*timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].id < h[j].id
	}
	return h[i].at.Before(h[j].at)
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *timerHeap) Push(x any) {
	t := x.(*timer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return t
}
