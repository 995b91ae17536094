package fjordtest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Transactions (KIP-98, KIP-447) through franz-go and sarama. Written to Apache
// Kafka 4.4.0's behaviour and checked against it:
//
//	GO_TEST_KAFKA=1 GO_TEST_ARGS='-run Txn' tests/go/run

// txnClient is a franz-go transactional producer (manual partitioning).
func txnClient(t *testing.T, id string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return newClient(t, append([]kgo.Opt{
		kgo.TransactionalID(id),
		kgo.TransactionTimeout(30 * time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	}, opts...)...)
}

func produceTxnRecords(t *testing.T, cl *kgo.Client, topic string, partitions int32, prefix string, n int) {
	t.Helper()
	var rs []*kgo.Record
	for i := 0; i < n; i++ {
		rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(i) % partitions, Value: []byte(fmt.Sprintf("%s-%d", prefix, i))})
	}
	if err := cl.ProduceSync(ctxT(t, 15*time.Second), rs...).FirstErr(); err != nil {
		t.Fatalf("transactional produce %s: %v", prefix, err)
	}
}

// sentinels writes a non-transactional record "end" to every partition.
func sentinels(t *testing.T, topic string, partitions int32) {
	t.Helper()
	cl := newClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for p := int32(0); p < partitions; p++ {
		if err := cl.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: topic, Partition: p, Value: []byte("end")}).FirstErr(); err != nil {
			t.Fatalf("sentinel: %v", err)
		}
	}
}

// readUntilSentinels consumes every partition from the start with the given
// isolation level until each partition's "end" record arrived; returns the
// records before them.
func readUntilSentinels(t *testing.T, topic string, partitions int32, committed bool) []*kgo.Record {
	t.Helper()
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	offs := map[int32]kgo.Offset{}
	for p := int32(0); p < partitions; p++ {
		offs[p] = kgo.NewOffset().AtStart()
	}
	cl := newClient(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}),
		kgo.FetchIsolationLevel(iso), kgo.FetchMaxWait(200*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := map[int32]bool{}
	var out []*kgo.Record
	for len(done) < int(partitions) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s (committed=%v): only %d partitions reached their end record; got %d records", topic, committed, len(done), len(out))
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) == "end" {
				done[r.Partition] = true
			} else if !done[r.Partition] {
				out = append(out, r)
			}
		})
	}
	return out
}

func values(rs []*kgo.Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, string(r.Value))
	}
	sort.Strings(out)
	return out
}

func partitionOffsets(rs []*kgo.Record, p int32) []int64 {
	var out []int64
	for _, r := range rs {
		if r.Partition == p {
			out = append(out, r.Offset)
		}
	}
	return out
}

// listOffset is a raw ListOffsets (latest) with the given isolation level:
// read_committed answers the last stable offset.
func listOffset(t *testing.T, cl *kgo.Client, topic string, p int32, isolation int8) int64 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	req.IsolationLevel = isolation
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition = p
	rp.Timestamp = -1
	rp.CurrentLeaderEpoch = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
	if err != nil {
		t.Fatalf("ListOffsets: %v", err)
	}
	pr := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(pr.ErrorCode); err != nil {
		t.Fatalf("ListOffsets %s/%d: %v", topic, p, err)
	}
	return pr.Offset
}

func describeTxn(t *testing.T, adm *kadm.Client, id string) kadm.DescribedTransaction {
	t.Helper()
	ds, err := adm.DescribeTransactions(ctxT(t, 10*time.Second), id)
	if err != nil {
		t.Fatalf("DescribeTransactions: %v", err)
	}
	d, ok := ds[id]
	if !ok {
		t.Fatalf("DescribeTransactions: %s not in %v", id, ds)
	}
	return d
}

func waitTxnState(t *testing.T, adm *kadm.Client, id string, timeout time.Duration, states ...string) kadm.DescribedTransaction {
	t.Helper()
	var d kadm.DescribedTransaction
	waitFor(t, timeout, fmt.Sprintf("transaction %s in state %v (last: %+v)", id, states, &d), func() bool {
		d = describeTxn(t, adm, id)
		for _, s := range states {
			if d.Err == nil && d.State == s {
				return true
			}
		}
		return false
	})
	return d
}

// Three transactions on two partitions: commit, abort, commit. read_committed
// sees only the committed records, read_uncommitted everything; every
// transaction leaves one marker per partition (the offsets skip them); the
// transaction and producer state is visible through kadm.
func TestKgoTxnCommitAbort(t *testing.T) {
	adm := setup(t)
	topic := createTopic(t, adm, 2, nil)
	id := uniq("kgo-txn")
	cl := txnClient(t, id)
	for _, step := range []struct {
		prefix string
		n      int
		commit kgo.TransactionEndTry
	}{{"c1", 6, kgo.TryCommit}, {"a2", 4, kgo.TryAbort}, {"c3", 4, kgo.TryCommit}} {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatalf("BeginTransaction: %v", err)
		}
		produceTxnRecords(t, cl, topic, 2, step.prefix, step.n)
		if step.prefix == "c1" {
			d := describeTxn(t, adm, id)
			if d.State != "Ongoing" || !d.Topics.Lookup(topic, 0) || !d.Topics.Lookup(topic, 1) {
				t.Errorf("inside the first transaction: %+v", d)
			}
		}
		if err := cl.EndTransaction(ctxT(t, 15*time.Second), step.commit); err != nil {
			t.Fatalf("EndTransaction(%s, commit=%v): %v", step.prefix, step.commit, err)
		}
	}
	sentinels(t, topic, 2)

	committed := readUntilSentinels(t, topic, 2, true)
	want := []string{"c1-0", "c1-1", "c1-2", "c1-3", "c1-4", "c1-5", "c3-0", "c3-1", "c3-2", "c3-3"}
	if got := values(committed); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("read_committed: %v, want %v", got, want)
	}
	// per partition: c1 at 0-2, marker 3, a2 at 4-5, marker 6, c3 at 7-8, marker 9, end 10
	for p := int32(0); p < 2; p++ {
		if got := fmt.Sprint(partitionOffsets(committed, p)); got != "[0 1 2 7 8]" {
			t.Errorf("partition %d: committed records at offsets %s, want [0 1 2 7 8]", p, got)
		}
	}
	all := readUntilSentinels(t, topic, 2, false)
	if len(all) != 14 {
		t.Errorf("read_uncommitted: %d records %v, want 14 (aborted ones included)", len(all), values(all))
	}
	if len(committed) == 0 {
		t.FailNow()
	}
	pid, epoch := committed[0].ProducerID, committed[0].ProducerEpoch
	for _, r := range all {
		if r.ProducerID != pid {
			t.Errorf("record %q has producer id %d, want %d", r.Value, r.ProducerID, pid)
		}
	}
	end, err := adm.ListEndOffsets(ctxT(t, 10*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 2; p++ {
		if o, _ := end.Lookup(topic, p); o.Offset != 11 {
			t.Errorf("partition %d end offset %d, want 11 (3 markers)", p, o.Offset)
		}
		if lso := listOffset(t, cl, topic, p, 1); lso != 11 {
			t.Errorf("partition %d last stable offset %d, want 11", p, lso)
		}
	}

	d := waitTxnState(t, adm, id, 15*time.Second, "CompleteCommit")
	if d.ProducerID != pid || d.TimeoutMillis != 30000 || d.Topics.Lookup(topic, 0) {
		t.Errorf("DescribeTransactions after commit: %+v (records: producer %d epoch %d)", d, pid, epoch)
	}
	lt, err := adm.ListTransactions(ctxT(t, 10*time.Second), []int64{pid}, nil)
	if err != nil {
		t.Fatalf("ListTransactions: %v", err)
	}
	if l, ok := lt[id]; !ok || l.ProducerID != pid || l.State != "CompleteCommit" {
		t.Errorf("ListTransactions(pid %d): %+v", pid, lt)
	}
	dp, err := adm.DescribeProducers(ctxT(t, 10*time.Second), kadm.TopicsSet{topic: {0: {}, 1: {}}})
	if err != nil {
		t.Fatalf("DescribeProducers: %v", err)
	}
	// TV1 (Fjord; Kafka with transaction.version=1): one epoch, sequences 0-6 per
	// partition. TV2 (Kafka 4.4.0's default, franz-go opts in): every EndTxn bumps
	// the epoch and the marker resets the last sequence to -1.
	wantSeq := int32(6)
	if d.ProducerEpoch != epoch {
		wantSeq = -1
	}
	for _, p := range dp.SortedPartitions() {
		prod, ok := p.ActiveProducers[pid]
		if p.Err != nil || !ok || prod.CurrentTxnStartOffset != -1 || prod.LastSequence != wantSeq ||
			prod.ProducerEpoch != d.ProducerEpoch || prod.CoordinatorEpoch < 0 {
			t.Errorf("DescribeProducers %s/%d: err %v, producers %+v (want producer %d epoch %d, no open txn, last sequence %d)",
				p.Topic, p.Partition, p.Err, p.ActiveProducers, pid, d.ProducerEpoch, wantSeq)
		}
	}
}

// While a transaction is open, read_committed stops at its first offset (the
// last stable offset) even for records produced after it outside any
// transaction; the commit releases both.
func TestKgoTxnReadCommittedWaitsForCommit(t *testing.T) {
	adm := setup(t)
	topic := createTopic(t, adm, 1, nil)
	plain := newClient(t)
	if err := plain.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: topic, Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	tx := txnClient(t, uniq("kgo-lso"))
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceTxnRecords(t, tx, topic, 1, "pending", 2) // offsets 1, 2
	if err := plain.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: topic, Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err) // offset 3
	}
	if lso, leo := listOffset(t, plain, topic, 0, 1), listOffset(t, plain, topic, 0, 0); lso != 1 || leo != 4 {
		t.Errorf("open transaction: last stable offset %d (want 1), end offset %d (want 4)", lso, leo)
	}
	rc := newClient(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(200*time.Millisecond))
	got := pollN(t, rc, 1, 15*time.Second)
	if len(got) != 1 || string(got[0].Value) != "before" {
		t.Fatalf("read_committed before commit: %v", values(got))
	}
	// nothing past the last stable offset while the transaction is open
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	fs := rc.PollFetches(ctx)
	cancel()
	if n := len(fs.Records()); n != 0 {
		t.Fatalf("read_committed returned %d records past the last stable offset: %v", n, values(fs.Records()))
	}
	if err := tx.EndTransaction(ctxT(t, 15*time.Second), kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	got = pollN(t, rc, 3, 15*time.Second)
	if v := fmt.Sprint(values(got)); v != "[after pending-0 pending-1]" {
		t.Errorf("read_committed after commit: %s", v)
	}
	if o := fmt.Sprint(partitionOffsets(got, 0)); o != "[1 2 3]" {
		t.Errorf("offsets after commit: %s, want [1 2 3]", o)
	}
	waitFor(t, 10*time.Second, "last stable offset 5", func() bool { return listOffset(t, plain, topic, 0, 1) == 5 })
}

// A second producer with the same transactional id fences the first: its open
// transaction is aborted and its commit fails; the new one commits.
func TestKgoTxnFencing(t *testing.T) {
	adm := setup(t)
	topic := createTopic(t, adm, 1, nil)
	id := uniq("kgo-fence")
	old := txnClient(t, id)
	if err := old.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceTxnRecords(t, old, topic, 1, "old", 2)
	nw := txnClient(t, id)
	if err := nw.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceTxnRecords(t, nw, topic, 1, "new", 1)
	err := old.EndTransaction(ctxT(t, 15*time.Second), kgo.TryCommit)
	if err == nil {
		t.Fatalf("the fenced producer's commit succeeded")
	}
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Errorf("fenced commit: %v, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", err)
	}
	t.Logf("fenced producer's commit: %v", err)
	if err := nw.EndTransaction(ctxT(t, 15*time.Second), kgo.TryCommit); err != nil {
		t.Fatalf("new producer's commit: %v", err)
	}
	sentinels(t, topic, 1)
	if got := fmt.Sprint(values(readUntilSentinels(t, topic, 1, true))); got != "[new-0]" {
		t.Errorf("read_committed: %s, want [new-0]", got)
	}
	if got := len(readUntilSentinels(t, topic, 1, false)); got != 3 {
		t.Errorf("read_uncommitted: %d records, want 3", got)
	}
}

// transaction.timeout.ms: the coordinator aborts an idle open transaction and
// fences the producer; the records never become visible to read_committed.
func TestKgoTxnTimeout(t *testing.T) {
	adm := setup(t)
	topic := createTopic(t, adm, 1, nil)
	id := uniq("kgo-timeout")
	cl := txnClient(t, id, kgo.TransactionTimeout(2*time.Second))
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceTxnRecords(t, cl, topic, 1, "late", 1)
	d := waitTxnState(t, adm, id, 30*time.Second, "CompleteAbort")
	t.Logf("after the timeout: %+v", d)
	err := cl.EndTransaction(ctxT(t, 15*time.Second), kgo.TryCommit)
	if err == nil {
		t.Fatalf("commit after the coordinator aborted the transaction succeeded")
	}
	t.Logf("commit after timeout: %v", err)
	sentinels(t, topic, 1)
	if got := values(readUntilSentinels(t, topic, 1, true)); len(got) != 0 {
		t.Errorf("read_committed after the timeout abort: %v", got)
	}
	// the transactional id is usable again by a new producer
	again := txnClient(t, id)
	if err := again.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceTxnRecords(t, again, topic, 1, "retry", 1)
	if err := again.EndTransaction(ctxT(t, 15*time.Second), kgo.TryCommit); err != nil {
		t.Fatalf("new producer after the timeout: %v", err)
	}
	waitFor(t, 10*time.Second, "retry-0 visible to read_committed", func() bool {
		return listOffset(t, again, topic, 0, 1) == listOffset(t, again, topic, 0, 0)
	})
}

// consume-transform-produce with GroupTransactSession: the first transaction is
// aborted (the session rewinds to the committed offsets), a second session
// takes over the group half way; every input record is in the output exactly
// once for read_committed, and the group's offsets are at the end.
func TestKgoGroupTransactSessionExactlyOnce(t *testing.T) {
	adm := setup(t)
	in := createTopic(t, adm, 3, nil)
	out := createTopic(t, adm, 3, nil)
	group := uniq("eos")
	const total = 60
	prod := newClient(t)
	for i := 0; i < total; i++ {
		r := &kgo.Record{Topic: in, Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("in-%03d", i))}
		if err := prod.ProduceSync(ctxT(t, 10*time.Second), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	committedTotal := func() int64 {
		offs, err := adm.FetchOffsets(ctxT(t, 10*time.Second), group)
		if err != nil {
			return -1
		}
		var sum int64
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Topic == in && o.Err == nil {
				sum += o.At
			}
		})
		return sum
	}
	aborted := 0
	runSession := func(name string, untilCommitted int64, abortFirst bool) {
		s, err := kgo.NewGroupTransactSession(append(baseOpts(t, shared),
			kgo.TransactionalID(uniq("eos-"+name)), kgo.TransactionTimeout(30*time.Second),
			kgo.ConsumerGroup(group), kgo.ConsumeTopics(in),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.RequireStableFetchOffsets(),
			kgo.FetchMaxWait(200*time.Millisecond), kgo.DefaultProduceTopic(out),
			kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))...)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		deadline := time.Now().Add(60 * time.Second)
		first := true
		for committedTotal() < untilCommitted {
			if time.Now().After(deadline) {
				t.Fatalf("session %s: group offsets reached only %d of %d", name, committedTotal(), untilCommitted)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			fs := s.PollRecords(ctx, 7)
			cancel()
			fs.EachError(func(tp string, p int32, err error) {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("session %s fetch %s/%d: %v", name, tp, p, err)
				}
			})
			recs := fs.Records()
			if len(recs) == 0 {
				continue
			}
			if err := s.Begin(); err != nil {
				t.Fatalf("session %s Begin: %v", name, err)
			}
			var wg sync.WaitGroup
			var perr error
			var mu sync.Mutex
			for _, r := range recs {
				wg.Add(1)
				s.Produce(context.Background(), &kgo.Record{Key: r.Key, Value: []byte("out-" + string(r.Value))},
					func(_ *kgo.Record, err error) {
						defer wg.Done()
						if err != nil {
							mu.Lock()
							perr = err
							mu.Unlock()
						}
					})
			}
			wg.Wait()
			if perr != nil {
				t.Fatalf("session %s produce: %v", name, perr)
			}
			try := kgo.TryCommit
			if first && abortFirst {
				try = kgo.TryAbort
				aborted += len(recs)
			}
			first = false
			committed, err := s.End(ctxT(t, 20*time.Second), try)
			if err != nil {
				t.Fatalf("session %s End(%v): %v", name, try, err)
			}
			if committed != bool(try) {
				t.Logf("session %s: End(%v) committed=%v (rebalance?)", name, try, committed)
			}
		}
	}
	runSession("a", total/2, true)
	runSession("b", total, false)
	if aborted == 0 {
		t.Fatalf("the first transaction aborted nothing")
	}

	sentinels(t, out, 3)
	got := readUntilSentinels(t, out, 3, true)
	seen := map[string]int{}
	for _, r := range got {
		seen[string(r.Value)]++
	}
	for i := 0; i < total; i++ {
		v := fmt.Sprintf("out-in-%03d", i)
		if seen[v] != 1 {
			t.Errorf("%s appears %d times in the committed output", v, seen[v])
		}
	}
	if len(got) != total {
		t.Errorf("committed output has %d records, want %d", len(got), total)
	}
	all := readUntilSentinels(t, out, 3, false)
	if len(all) < total+aborted {
		t.Errorf("read_uncommitted output has %d records, want at least %d (%d aborted)", len(all), total+aborted, aborted)
	}
	if c := committedTotal(); c != total {
		t.Errorf("group offsets sum to %d, want %d", c, total)
	}
}

// sarama's transactional producer: commit, abort, commit with AddOffsetsToTxn,
// abort with AddOffsetsToTxn; sarama's read_committed consumer sees only the
// committed records and the group offset is the committed transaction's.
func TestSaramaTxnProducer(t *testing.T) {
	adm := setup(t)
	topic := createTopic(t, adm, 1, nil)
	group := uniq("sarama-txn-group")
	cfg := saramaConfig()
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Transaction.ID = uniq("sarama-txn")
	cfg.Producer.Transaction.Retry.Backoff = 50 * time.Millisecond
	p, err := sarama.NewSyncProducer([]string{shared.Addr}, cfg)
	if err != nil {
		t.Fatalf("NewSyncProducer: %v", err)
	}
	defer p.Close()
	if !p.IsTransactional() {
		t.Fatalf("producer is not transactional")
	}
	send := func(vals ...string) {
		t.Helper()
		for _, v := range vals {
			if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder(v)}); err != nil {
				t.Fatalf("SendMessage %s: %v", v, err)
			}
		}
	}
	offsets := func(o int64) map[string][]*sarama.PartitionOffsetMetadata {
		return map[string][]*sarama.PartitionOffsetMetadata{topic: {{Partition: 0, Offset: o}}}
	}
	steps := []struct {
		vals   []string
		offset int64
		commit bool
	}{{[]string{"s1-0", "s1-1", "s1-2"}, -1, true}, {[]string{"s2-0", "s2-1"}, -1, false},
		{[]string{"s3-0"}, 5, true}, {[]string{"s4-0"}, 9, false}}
	for _, st := range steps {
		if err := p.BeginTxn(); err != nil {
			t.Fatalf("BeginTxn: %v", err)
		}
		send(st.vals...)
		if st.offset >= 0 {
			if err := p.AddOffsetsToTxn(offsets(st.offset), group); err != nil {
				t.Fatalf("AddOffsetsToTxn: %v", err)
			}
		}
		if st.commit {
			err = p.CommitTxn()
		} else {
			err = p.AbortTxn()
		}
		if err != nil {
			t.Fatalf("end txn %v (commit=%v): %v", st.vals, st.commit, err)
		}
		if p.TxnStatus()&sarama.ProducerTxnFlagReady == 0 {
			t.Fatalf("producer not ready after ending a transaction: %v", p.TxnStatus())
		}
	}
	sentinels(t, topic, 1)

	ccfg := saramaConfig()
	ccfg.Consumer.IsolationLevel = sarama.ReadCommitted
	c, err := sarama.NewConsumer([]string{shared.Addr}, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc, err := c.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var got []string
	timeout := time.After(20 * time.Second)
read:
	for {
		select {
		case m := <-pc.Messages():
			if string(m.Value) == "end" {
				break read
			}
			got = append(got, fmt.Sprintf("%s@%d", m.Value, m.Offset))
		case err := <-pc.Errors():
			t.Fatalf("consume: %v", err)
		case <-timeout:
			t.Fatalf("read_committed: no end record after 20s; got %v", got)
		}
	}
	// s1 at 0-2, marker 3, s2 at 4-5, marker 6, s3 at 7, marker 8, s4 at 9, marker 10
	if g := strings.Join(got, " "); g != "s1-0@0 s1-1@1 s1-2@2 s3-0@7" {
		t.Errorf("sarama read_committed: %s, want s1-0@0 s1-1@1 s1-2@2 s3-0@7", g)
	}
	var last kadm.OffsetResponse
	waitFor(t, 10*time.Second, "the committed transaction's group offset 5 (not the aborted 9)", func() bool {
		offs, err := adm.FetchOffsets(ctxT(t, 10*time.Second), group)
		if err != nil {
			return false
		}
		o, ok := offs.Lookup(topic, 0)
		last = o
		return ok && o.Err == nil && o.At == 5
	})
	if last.At != 5 {
		t.Errorf("group offset %+v", last)
	}
}

// Transaction state survives a graceful restart: the coordinator still knows
// the open transaction, read_committed still stops at its first offset and
// still drops the aborted records; a new producer with the same id aborts the
// open transaction and fences the old producer.
// (On Kafka: GO_TEST_KAFKA=1 restarts the run's Kafka through scripts/kafka-ref.)
func TestKgoTxnSurvivesRestart(t *testing.T) {
	b := ownBroker(t)
	adm := kadm.NewClient(newClientOn(t, b, kgo.MetadataMinAge(50*time.Millisecond)))
	topic := uniq("txn-restart")
	if _, err := adm.CreateTopic(ctxT(t, 15*time.Second), 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	id := uniq("kgo-restart")
	txOpts := []kgo.Opt{kgo.TransactionalID(id), kgo.TransactionTimeout(60 * time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RecordRetries(1000), kgo.RetryTimeout(30 * time.Second)}
	old := newClientOn(t, b, txOpts...)
	for _, step := range []struct {
		prefix string
		end    *kgo.TransactionEndTry
	}{{"c", &[]kgo.TransactionEndTry{kgo.TryCommit}[0]}, {"a", &[]kgo.TransactionEndTry{kgo.TryAbort}[0]}, {"open", nil}} {
		if err := old.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		n := 2
		if step.prefix != "c" {
			n = 1
		}
		produceTxnRecords(t, old, topic, 1, step.prefix, n)
		if step.end != nil {
			if err := old.EndTransaction(ctxT(t, 15*time.Second), *step.end); err != nil {
				t.Fatal(err)
			}
		}
	}
	// c-0 c-1 @0,1, marker 2, a-0 @3, marker 4, open-0 @5
	waitFor(t, 10*time.Second, "last stable offset 5 before the restart", func() bool {
		return listOffset(t, old, topic, 0, 1) == 5
	})

	if err := b.Restart(); err != nil {
		t.Fatalf("restart: %v", err)
	}

	var d kadm.DescribedTransaction
	waitFor(t, 30*time.Second, "the open transaction described after the restart", func() bool {
		ds, err := adm.DescribeTransactions(ctxT(t, 10*time.Second), id)
		if err != nil {
			return false
		}
		d = ds[id]
		return d.Err == nil && d.State != ""
	})
	if d.State != "Ongoing" || !d.Topics.Lookup(topic, 0) {
		t.Errorf("after the restart: %+v, want Ongoing with %s/0", d, topic)
	}
	plain := newClientOn(t, b)
	if lso, leo := listOffset(t, plain, topic, 0, 1), listOffset(t, plain, topic, 0, 0); lso != 5 || leo != 6 {
		t.Errorf("after the restart: last stable offset %d (want 5), end offset %d (want 6)", lso, leo)
	}
	rc := newClientOn(t, b, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(200*time.Millisecond))
	got := pollN(t, rc, 2, 20*time.Second)
	if v := fmt.Sprint(values(got)); v != "[c-0 c-1]" {
		t.Errorf("read_committed after the restart: %s, want [c-0 c-1]", v)
	}

	nw := newClientOn(t, b, txOpts...)
	if err := nw.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produceTxnRecords(t, nw, topic, 1, "new", 1)
	if err := nw.EndTransaction(ctxT(t, 30*time.Second), kgo.TryCommit); err != nil {
		t.Fatalf("new producer's commit after the restart: %v", err)
	}
	if err := old.EndTransaction(ctxT(t, 30*time.Second), kgo.TryCommit); err == nil {
		t.Errorf("the old producer committed after being fenced")
	} else {
		t.Logf("old producer's commit: %v", err)
	}
	if err := plain.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: topic, Value: []byte("end")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	all := pollUntilEnd(t, rc, 20*time.Second)
	if v := fmt.Sprint(values(append(got, all...))); v != "[c-0 c-1 new-0]" {
		t.Errorf("read_committed at the end: %s, want [c-0 c-1 new-0]", v)
	}
}

// pollUntilEnd polls until a record "end" arrives; returns the records before it.
func pollUntilEnd(t *testing.T, cl *kgo.Client, timeout time.Duration) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("no end record within %v; got %v", timeout, values(out))
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
		for _, r := range fs.Records() {
			if string(r.Value) == "end" {
				return out
			}
			out = append(out, r)
		}
	}
}

// saramaEOS consumes a group claim, and per message: produces the transformed
// record and AddMessageToTxn in one transaction; every third message is first
// processed in a transaction that is aborted, then redone.
type saramaEOS struct {
	t       *testing.T
	p       sarama.SyncProducer
	group   string
	out     string
	txMu    sync.Mutex // one transaction at a time: claims are consumed concurrently
	mu      sync.Mutex
	done    int
	aborted int
	failed  error
}

func (h *saramaEOS) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *saramaEOS) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *saramaEOS) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		attempts := 1
		if msg.Offset%3 == 0 {
			attempts = 2
		}
		for a := 0; a < attempts; a++ {
			commit := a == attempts-1
			h.txMu.Lock()
			err := h.p.BeginTxn()
			if err == nil {
				_, _, err = h.p.SendMessage(&sarama.ProducerMessage{Topic: h.out, Key: sarama.ByteEncoder(msg.Key),
					Value: sarama.StringEncoder("out-" + string(msg.Value))})
			}
			if err == nil {
				err = h.p.AddMessageToTxn(msg, h.group, nil)
			}
			if err == nil && commit {
				err = h.p.CommitTxn()
			} else if err == nil {
				err = h.p.AbortTxn()
			}
			h.txMu.Unlock()
			h.mu.Lock()
			if err != nil && h.failed == nil {
				h.failed = fmt.Errorf("message %s/%d@%d attempt %d: %w", msg.Topic, msg.Partition, msg.Offset, a, err)
			}
			if err == nil && commit {
				h.done++
			} else if err == nil {
				h.aborted++
			}
			h.mu.Unlock()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// sarama consume-transform-produce: a ConsumerGroup handler with a
// transactional producer (AddMessageToTxn), aborts included; the committed
// output has every input exactly once and the group's offsets are at the end.
func TestSaramaTxnConsumeTransformProduce(t *testing.T) {
	adm := setup(t)
	in := createTopic(t, adm, 2, nil)
	out := createTopic(t, adm, 2, nil)
	group := uniq("sarama-eos")
	const total = 30
	prod := newClient(t)
	for i := 0; i < total; i++ {
		r := &kgo.Record{Topic: in, Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("in-%03d", i))}
		if err := prod.ProduceSync(ctxT(t, 10*time.Second), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	pcfg := saramaConfig()
	pcfg.Producer.Idempotent = true
	pcfg.Producer.RequiredAcks = sarama.WaitForAll
	pcfg.Producer.Return.Successes = true
	pcfg.Net.MaxOpenRequests = 1
	pcfg.Producer.Transaction.ID = uniq("sarama-eos-txn")
	pcfg.Producer.Transaction.Retry.Backoff = 50 * time.Millisecond
	p, err := sarama.NewSyncProducer([]string{shared.Addr}, pcfg)
	if err != nil {
		t.Fatalf("NewSyncProducer: %v", err)
	}
	defer p.Close()

	ccfg := saramaConfig()
	ccfg.Consumer.IsolationLevel = sarama.ReadCommitted
	ccfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	ccfg.Consumer.Offsets.AutoCommit.Enable = false
	cg, err := sarama.NewConsumerGroup([]string{shared.Addr}, group, ccfg)
	if err != nil {
		t.Fatalf("NewConsumerGroup: %v", err)
	}
	h := &saramaEOS{t: t, p: p, group: group, out: out}
	ctx, cancel := context.WithCancel(context.Background())
	consumed := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{in}, h); err != nil {
				consumed <- err
				return
			}
		}
		consumed <- nil
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		h.mu.Lock()
		done, failed := h.done, h.failed
		h.mu.Unlock()
		if failed != nil {
			cancel()
			t.Fatalf("handler: %v", failed)
		}
		if done >= total {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("processed %d of %d messages in 60s", done, total)
		}
		time.Sleep(25 * time.Millisecond)
	}
	cancel()
	if err := <-consumed; err != nil {
		t.Errorf("Consume: %v", err)
	}
	cg.Close()

	sentinels(t, out, 2)
	got := readUntilSentinels(t, out, 2, true)
	seen := map[string]int{}
	for _, r := range got {
		seen[string(r.Value)]++
	}
	for i := 0; i < total; i++ {
		if v := fmt.Sprintf("out-in-%03d", i); seen[v] != 1 {
			t.Errorf("%s appears %d times in the committed output", v, seen[v])
		}
	}
	if len(got) != total {
		t.Errorf("committed output: %d records, want %d", len(got), total)
	}
	if all := readUntilSentinels(t, out, 2, false); len(all) != total+h.aborted || h.aborted == 0 {
		t.Errorf("read_uncommitted output: %d records, want %d (+%d aborted)", len(all), total+h.aborted, h.aborted)
	}
	offs, err := adm.FetchOffsets(ctxT(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	end, err := adm.ListEndOffsets(ctxT(t, 10*time.Second), in)
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 2; p++ {
		o, _ := offs.Lookup(in, p)
		e, _ := end.Lookup(in, p)
		if o.At != e.Offset {
			t.Errorf("group offset of %s/%d is %d, end offset %d", in, p, o.At, e.Offset)
		}
	}
}

// Two GroupTransactSessions in one group at the same time (the second joins
// mid-way, a rebalance moves partitions between them while transactions are in
// flight): KIP-447's require_stable offsets and the generation check in
// TxnOffsetCommit keep the committed output exactly once.
func TestKgoGroupTransactSessionConcurrent(t *testing.T) {
	adm := setup(t)
	in := createTopic(t, adm, 4, nil)
	out := createTopic(t, adm, 4, nil)
	group := uniq("eos2")
	const total = 200
	prod := newClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var rs []*kgo.Record
	for i := 0; i < total; i++ {
		rs = append(rs, &kgo.Record{Topic: in, Partition: int32(i % 4), Value: []byte(fmt.Sprintf("in-%03d", i))})
	}
	if err := prod.ProduceSync(ctxT(t, 20*time.Second), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	committedTotal := func() int64 {
		offs, err := adm.FetchOffsets(ctxT(t, 10*time.Second), group)
		if err != nil {
			return -1
		}
		var sum int64
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Topic == in && o.Err == nil {
				sum += o.At
			}
		})
		return sum
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	var commits, notCommitted int
	perSession := map[string]int{}
	run := func(name string) {
		defer wg.Done()
		s, err := kgo.NewGroupTransactSession(append(baseOpts(t, shared),
			kgo.TransactionalID(uniq("eos2-"+name)), kgo.TransactionTimeout(30*time.Second),
			kgo.ConsumerGroup(group), kgo.ConsumeTopics(in), kgo.Balancers(kgo.CooperativeStickyBalancer()),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.RequireStableFetchOffsets(),
			kgo.FetchMaxWait(100*time.Millisecond), kgo.DefaultProduceTopic(out))...)
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			return
		}
		defer s.Close()
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			fs := s.PollRecords(ctx, 5)
			cancel()
			recs := fs.Records()
			if len(recs) == 0 {
				continue
			}
			if err := s.Begin(); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s Begin: %w", name, err))
				mu.Unlock()
				return
			}
			for _, r := range recs {
				s.Produce(context.Background(), &kgo.Record{Partition: r.Partition, Value: []byte("out-" + string(r.Value))}, nil)
			}
			committed, err := s.End(ctxT(t, 30*time.Second), kgo.TryCommit)
			mu.Lock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s End: %w", name, err))
			} else if committed {
				commits++
				perSession[name]++
			} else {
				notCommitted++
			}
			mu.Unlock()
			time.Sleep(25 * time.Millisecond) // slow enough for the second member to take part
		}
	}
	wg.Add(1)
	go run("a")
	waitFor(t, 30*time.Second, "the first session committing something", func() bool { return committedTotal() > 0 })
	wg.Add(1)
	go run("b")
	waitFor(t, 90*time.Second, fmt.Sprintf("group offsets reaching %d", total), func() bool { return committedTotal() >= total })
	close(stop)
	wg.Wait()
	mu.Lock()
	t.Logf("%d transactions committed (%v), %d aborted by the session (rebalances)", commits, perSession, notCommitted)
	if perSession["a"] == 0 || perSession["b"] == 0 {
		t.Errorf("both sessions should have committed transactions: %v", perSession)
	}
	for _, err := range errs {
		t.Errorf("session error: %v", err)
	}
	mu.Unlock()

	sentinels(t, out, 4)
	got := readUntilSentinels(t, out, 4, true)
	seen := map[string]int{}
	for _, r := range got {
		seen[string(r.Value)]++
	}
	for i := 0; i < total; i++ {
		if v := fmt.Sprintf("out-in-%03d", i); seen[v] != 1 {
			t.Errorf("%s appears %d times in the committed output", v, seen[v])
		}
	}
	if len(got) != total {
		t.Errorf("committed output: %d records, want %d", len(got), total)
	}
	if c := committedTotal(); c != total {
		t.Errorf("group offsets sum to %d, want %d", c, total)
	}
}
