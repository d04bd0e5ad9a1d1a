// Package watch is Concord's watch hub: it fans the events of applied
// revisions out to etcd-style watchers, and catches up watchers that start in
// the past or fall behind by reading history from the multi-version store.
//
// # Basics
//
// The applier owns the feed. After every revision-bumping write it calls
// [Hub.Notify] with the revision and its events (a txn's events share one
// revision), in revision order, from one goroutine. Notify never blocks on
// a consumer and does no I/O: its cost is proportional to the watchers the
// events match (single-key watchers are found in a map, range watchers in an
// interval tree, and watchers of the same range share one tree node).
//
// Each client Watch stream gets a [Stream] from [Hub.NewStream]. Its receive
// loop calls [Stream.Watch] with the etcd create request, [Stream.Cancel]
// and [Stream.RequestProgress]; its send loop forwards [Stream.Chan], whose
// [Response] values map one-to-one to etcd's WatchResponse
// ([Response.ToProto]). Everything a client must see is on that one ordered
// channel: the created reply before the watcher's first event, failed
// creates answered the way etcd answers them, cancels after the events
// already queued, compaction cancels, progress notifications and fragments.
//
// Per watcher, events arrive only after they were applied, in revision
// order, with no gap and no duplicate, across the switch from historical
// replay (start_revision in the past) to live events. A watcher whose start
// revision (or whose next needed revision, for one that fell behind) has
// been compacted gets a created reply, then a cancel with CompactRevision
// set, as in etcd. Filters (NOPUT, NODELETE), prev_kv (read from the source
// at the event's revision minus one, for the watchers that asked), client
// watch ids (0 and -1 pick the smallest free id from 0; a duplicate is
// etcd's "mvcc: duplicate watch ID provided on the WatchStream"),
// progress_notify (every ProgressNotifyInterval plus jitter, for synced idle
// watchers) and fragment (split above MaxFragmentBytes, all parts but the
// last flagged) follow etcd.
//
// Slow consumers. Each stream's queue holds at most StreamBufferEvents
// events. When a watcher's next response does not fit, Notify does not
// wait: the watcher leaves the live path and becomes "slow". The hub's
// catch-up loop then reads its missing revisions from the source in bounded
// batches, only when its stream has room again (the consumer reads), and
// hands it back to Notify once it has reached the hub's revision. Nothing is
// held in memory for a slow watcher but its position, so a consumer that
// never reads costs its stream's bounded queue and nothing more, and neither
// writes nor other streams notice it. Progress replies are only sent while
// every watcher concerned is synced, so they never promise events that are
// still to come.
//
// Goroutines: the Hub owns the catch-up loop; each Stream owns one goroutine
// that feeds Chan (it also fills prev_kv and runs the progress ticker).
// [Stream.Close] and [Hub.Close] stop them and wait.
//
// # Caveats
//
//   - The source must keep history until compaction: a watcher that falls
//     behind is served from it. One that falls behind further than the
//     compaction is canceled with CompactRevision and must re-list and
//     re-watch, exactly as in etcd.
//   - A watcher of a busy range on a slow stream is served in catch-up
//     batches rather than one response per revision; responses may carry
//     several revisions (as etcd's do for unsynced watchers), and their
//     header revision is the last revision the batch covers.
//   - prev_kv is read when the response is handed to Chan. If the
//     consumer is so slow that the previous revision has been compacted by
//     then, prev_kv is left empty (etcd behaves the same).
//   - A response's events are shared between watchers and with the
//     applier: neither the applier nor consumers may modify them.
//   - A single revision larger than StreamBufferEvents for one watcher
//     (for example a lease revoke deleting many watched keys) is queued
//     whole when the stream's queue is empty; the bound is then exceeded
//     by that one response.
//   - Unlike etcd 3.7, which drops a progress request that arrives while a
//     watcher is catching up, the hub answers it once all the stream's
//     watchers are synced (at most one such reply is pending per stream).
//   - Notify assumes it sees every revision. A revision that skips ahead
//     (after a raft snapshot install, call Notify(rev, nil)) sends every
//     synced watcher through catch-up; an older revision is ignored.
//   - Watch, Cancel and RequestProgress wait (honouring their context)
//     when MaxPendingControl of the client's own control replies are
//     unread, which pushes back on a client that writes but never reads.
package watch
