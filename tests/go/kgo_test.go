package fjordtest

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type sent struct {
	key, value string
	partition  int32
	offset     int64
}

func makeRecords(topic string, n int, prefix string) []*kgo.Record {
	rs := make([]*kgo.Record, n)
	for i := range rs {
		rs[i] = &kgo.Record{
			Topic: topic,
			Key:   []byte(fmt.Sprintf("%s-k%d", prefix, i)),
			Value: []byte(fmt.Sprintf("%s-value-%d-%s", prefix, i, bytes.Repeat([]byte("x"), i%50))),
		}
	}
	return rs
}

// checkSame asserts that the consumed records are exactly the produced ones
// (key, value, partition, offset), regardless of order across partitions.
func checkSame(t *testing.T, want []sent, got []*kgo.Record, checkOffsets bool) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("consumed %d records, produced %d", len(got), len(want))
	}
	byKey := map[string]sent{}
	for _, w := range want {
		byKey[w.key] = w
	}
	for _, r := range got {
		w, ok := byKey[string(r.Key)]
		if !ok {
			t.Fatalf("unexpected record key %q", r.Key)
		}
		if string(r.Value) != w.value {
			t.Errorf("key %s: value %q, want %q", r.Key, r.Value, w.value)
		}
		if r.Partition != w.partition {
			t.Errorf("key %s: partition %d, want %d", r.Key, r.Partition, w.partition)
		}
		if checkOffsets && r.Offset != w.offset {
			t.Errorf("key %s: offset %d, want %d", r.Key, r.Offset, w.offset)
		}
		delete(byKey, string(r.Key))
	}
	if len(byKey) != 0 {
		t.Errorf("%d records not consumed", len(byKey))
	}
}

func toSent(rs []*kgo.Record) []sent {
	out := make([]sent, len(rs))
	for i, r := range rs {
		out[i] = sent{string(r.Key), string(r.Value), r.Partition, r.Offset}
	}
	return out
}

// Produce synchronously with each acks level; offsets reported by the broker
// must be the offsets the records are read back at.
var acksModes = []struct {
	name string
	opts []kgo.Opt
}{
	{"all-idempotent-default", nil},
	{"all", []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite()}},
	{"leader", []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()}},
	{"none", []kgo.Opt{kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite()}},
}

func TestKgoProduceSyncAcks(t *testing.T) {
	adm := setup(t)
	for _, tc := range acksModes {
		t.Run(tc.name, func(t *testing.T) {
			topic := createTopic(t, adm, 3, nil)
			cl := newClient(t, tc.opts...)
			rs := makeRecords(topic, 30, tc.name)
			res := cl.ProduceSync(ctxT(t, 20*time.Second), rs...)
			if err := res.FirstErr(); err != nil {
				t.Fatalf("ProduceSync: %v", err)
			}
			checkOffsets := tc.name != "none"
			if checkOffsets {
				// offsets per partition are 0..n-1 in produce order
				next := map[int32]int64{}
				for _, r := range rs {
					if r.Offset != next[r.Partition] {
						t.Fatalf("record %s got offset %d on p%d, want %d", r.Key, r.Offset, r.Partition, next[r.Partition])
					}
					next[r.Partition]++
				}
			}
			got := consumeAll(t, topic, len(rs))
			checkSame(t, toSent(rs), got, checkOffsets)
			for _, r := range got {
				idem := tc.opts == nil
				if idem && r.ProducerID < 0 {
					t.Fatalf("idempotent producer: record has producer id %d", r.ProducerID)
				}
				if !idem && r.ProducerID >= 0 {
					t.Fatalf("non-idempotent producer: record has producer id %d", r.ProducerID)
				}
			}
		})
	}
}

// Asynchronous produce: every promise is called exactly once without error,
// offsets per partition are dense, and records read back equal.
func TestKgoProduceAsync(t *testing.T) {
	adm := setup(t)
	for _, tc := range acksModes {
		t.Run(tc.name, func(t *testing.T) {
			topic := createTopic(t, adm, 4, nil)
			cl := newClient(t, append([]kgo.Opt{kgo.ProducerLinger(5 * time.Millisecond)}, tc.opts...)...)
			const n = 2000
			rs := makeRecords(topic, n, "async")
			var mu sync.Mutex
			var errs []error
			calls := 0
			for _, r := range rs {
				cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
					mu.Lock()
					defer mu.Unlock()
					calls++
					if err != nil {
						errs = append(errs, err)
					}
				})
			}
			if err := cl.Flush(ctxT(t, 30*time.Second)); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			mu.Lock()
			if calls != n || len(errs) > 0 {
				t.Fatalf("promises: %d calls of %d, errors %v", calls, n, errs)
			}
			mu.Unlock()
			perPart := map[int32][]int64{}
			for _, r := range rs {
				perPart[r.Partition] = append(perPart[r.Partition], r.Offset)
			}
			if len(perPart) < 2 {
				t.Fatalf("records of distinct keys landed in %d partition(s)", len(perPart))
			}
			acked := tc.name != "none" // acks=0: no offsets come back
			if acked {
				for p, offs := range perPart {
					sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
					for i, o := range offs {
						if o != int64(i) {
							t.Fatalf("p%d: offsets not dense: position %d has offset %d", p, i, o)
						}
					}
				}
			}
			checkSame(t, toSent(rs), consumeAll(t, topic, n), acked)
		})
	}
}

// Every codec: records round-trip and the fetched batches carry the codec
// the producer used (Fjord stores batches as sent).
func TestKgoCodecs(t *testing.T) {
	adm := setup(t)
	for _, tc := range []struct {
		name  string
		codec kgo.CompressionCodec
		attr  uint8
	}{
		{"none", kgo.NoCompression(), 0},
		{"gzip", kgo.GzipCompression(), 1},
		{"snappy", kgo.SnappyCompression(), 2},
		{"lz4", kgo.Lz4Compression(), 3},
		{"zstd", kgo.ZstdCompression(), 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := createTopic(t, adm, 2, nil)
			cl := newClient(t, kgo.ProducerBatchCompression(tc.codec), kgo.ProducerLinger(20*time.Millisecond))
			rs := makeRecords(topic, 200, tc.name)
			var wg sync.WaitGroup
			var firstErr error
			var mu sync.Mutex
			for _, r := range rs {
				wg.Add(1)
				cl.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
					defer wg.Done()
					if err != nil {
						mu.Lock()
						firstErr = err
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if firstErr != nil {
				t.Fatalf("produce %s: %v", tc.name, firstErr)
			}
			got := consumeAll(t, topic, len(rs))
			checkSame(t, toSent(rs), got, true)
			for _, r := range got {
				if c := r.Attrs.CompressionType(); c != tc.attr {
					t.Fatalf("record %s: fetched batch compression %d, want %d", r.Key, c, tc.attr)
				}
			}
		})
	}
}

// Headers (repeated keys, empty and nil values, binary) survive, as do null
// keys and values and explicit timestamps.
func TestKgoHeadersNullsTimestamps(t *testing.T) {
	adm := setup(t)
	topic := createTopic(t, adm, 1, nil)
	cl := newClient(t)
	ts := time.UnixMilli(1_700_000_000_123)
	hdrs := []kgo.RecordHeader{
		{Key: "trace", Value: []byte("abc")},
		{Key: "trace", Value: []byte("def")},
		{Key: "empty", Value: []byte{}},
		{Key: "nil", Value: nil},
		{Key: "bin", Value: []byte{0, 1, 2, 255}},
		{Key: "ünïcode", Value: []byte("✓")},
	}
	rs := []*kgo.Record{
		{Topic: topic, Key: []byte("h"), Value: []byte("with headers"), Headers: hdrs, Timestamp: ts},
		{Topic: topic, Key: nil, Value: []byte("null key")},
		{Topic: topic, Key: []byte("tombstone"), Value: nil},
	}
	if err := cl.ProduceSync(ctxT(t, 10*time.Second), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := consumeN(t, map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}, 3)
	if len(got[0].Headers) != len(hdrs) {
		t.Fatalf("headers: got %d, want %d: %+v", len(got[0].Headers), len(hdrs), got[0].Headers)
	}
	for i, h := range hdrs {
		g := got[0].Headers[i]
		if g.Key != h.Key || !bytes.Equal(g.Value, h.Value) {
			t.Errorf("header %d: got %q=%q, want %q=%q", i, g.Key, g.Value, h.Key, h.Value)
		}
	}
	if !got[0].Timestamp.Equal(ts) {
		t.Errorf("timestamp %v, want %v", got[0].Timestamp, ts)
	}
	if got[1].Key != nil || string(got[1].Value) != "null key" {
		t.Errorf("null key record: key %v value %q", got[1].Key, got[1].Value)
	}
	if got[2].Value != nil || string(got[2].Key) != "tombstone" {
		t.Errorf("null value record: key %q value %v", got[2].Key, got[2].Value)
	}
}

// Keys map to stable partitions (the default sticky key partitioner, murmur2
// like the Java client); the manual partitioner writes where told.
func TestKgoKeysToPartitions(t *testing.T) {
	adm := setup(t)
	topic := createTopic(t, adm, 6, nil)
	cl := newClient(t)
	var rs []*kgo.Record
	for round := 0; round < 4; round++ {
		for k := 0; k < 30; k++ {
			rs = append(rs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("key-%d", k)), Value: []byte(fmt.Sprintf("%d", round))})
		}
	}
	if err := cl.ProduceSync(ctxT(t, 20*time.Second), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	where := map[string]int32{}
	used := map[int32]bool{}
	for _, r := range rs {
		if p, ok := where[string(r.Key)]; ok && p != r.Partition {
			t.Fatalf("key %s went to partitions %d and %d", r.Key, p, r.Partition)
		}
		where[string(r.Key)] = r.Partition
		used[r.Partition] = true
	}
	if len(used) < 4 {
		t.Fatalf("30 keys used only %d of 6 partitions", len(used))
	}
	// Read back: each partition holds exactly the keys that were routed there, in order.
	got := consumeAll(t, topic, len(rs))
	seen := map[string][]string{}
	for _, r := range got {
		if where[string(r.Key)] != r.Partition {
			t.Fatalf("key %s read from p%d, produced to p%d", r.Key, r.Partition, where[string(r.Key)])
		}
		seen[string(r.Key)] = append(seen[string(r.Key)], string(r.Value))
	}
	for k, vs := range seen {
		if fmt.Sprint(vs) != "[0 1 2 3]" {
			t.Fatalf("key %s values out of order: %v", k, vs)
		}
	}

	manual := newClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var mrs []*kgo.Record
	for p := int32(0); p < 6; p++ {
		mrs = append(mrs, &kgo.Record{Topic: topic, Partition: p, Key: []byte("same-key"), Value: []byte(fmt.Sprint(p))})
	}
	if err := manual.ProduceSync(ctxT(t, 10*time.Second), mrs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for _, r := range mrs {
		if fmt.Sprint(r.Partition) != string(r.Value) || r.Offset != 4*int64(countKeys(where, r.Partition)) {
			t.Fatalf("manual partitioner: record %s at p%d offset %d", r.Value, r.Partition, r.Offset)
		}
	}
}

func countKeys(where map[string]int32, p int32) int {
	n := 0
	for _, q := range where {
		if q == p {
			n++
		}
	}
	return n
}

// Direct partition consumption from explicit offsets: exact, relative, start,
// end (only new records) and by timestamp.
func TestKgoConsumePartitionsOffsets(t *testing.T) {
	adm := setup(t)
	topic := createTopic(t, adm, 3, nil)
	prod := newClient(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	base := time.UnixMilli(1_600_000_000_000)
	var rs []*kgo.Record
	for p := int32(0); p < 3; p++ {
		for i := 0; i < 10; i++ {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Key: []byte(fmt.Sprintf("p%d-%d", p, i)),
				Value: []byte(fmt.Sprint(i)), Timestamp: base.Add(time.Duration(i) * time.Second)})
		}
	}
	if err := prod.ProduceSync(ctxT(t, 10*time.Second), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	offsets := map[string]map[int32]kgo.Offset{topic: {
		0: kgo.NewOffset().At(7),                                             // 7,8,9
		1: kgo.NewOffset().AfterMilli(base.Add(8 * time.Second).UnixMilli()), // 8,9
		2: kgo.NewOffset().AtEnd(),                                           // only new
	}}
	cl := newClient(t, kgo.ConsumePartitions(offsets), kgo.FetchMaxWait(200*time.Millisecond))
	got := pollN(t, cl, 5, 20*time.Second)
	keys := map[string]bool{}
	for _, r := range got {
		keys[string(r.Key)] = true
	}
	for _, k := range []string{"p0-7", "p0-8", "p0-9", "p1-8", "p1-9"} {
		if !keys[k] {
			t.Fatalf("missing %s in %v", k, keys)
		}
	}
	if len(got) != 5 {
		t.Fatalf("got %d records, want 5: %v", len(got), keys)
	}
	// Partition 2 started at the end: a new record is delivered, the old ones are not.
	if err := prod.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: topic, Partition: 2, Key: []byte("p2-new"), Value: []byte("new")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	more := pollN(t, cl, 1, 20*time.Second)
	if len(more) != 1 || string(more[0].Key) != "p2-new" || more[0].Offset != 10 {
		t.Fatalf("after AtEnd: got %+v", more)
	}
	// Relative offset from the end: AtEnd().Relative(-2) → 2 last records of p0.
	got = consumeN(t, map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtEnd().Relative(-2)}}, 2)
	if got[0].Offset != 8 || got[1].Offset != 9 {
		t.Fatalf("AtEnd-2: offsets %d,%d", got[0].Offset, got[1].Offset)
	}
}

// A consumer group with autocommit off: CommitRecords commits exactly what
// was processed; a new member of the group resumes there.
func TestKgoGroupManualCommit(t *testing.T) {
	adm := setup(t)
	topic := createTopic(t, adm, 2, nil)
	group := uniq("grp")
	prod := newClient(t)
	rs := makeRecords(topic, 40, "g")
	if err := prod.ProduceSync(ctxT(t, 10*time.Second), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	perPart := map[int32]int64{}
	for _, r := range rs {
		perPart[r.Partition]++
	}

	cl, err := kgo.NewClient(append(baseOpts(t, shared), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	// read everything, commit only the first 5 records of each partition with CommitRecords
	got := pollN(t, cl, 40, 30*time.Second)
	var toCommit []*kgo.Record
	for _, r := range got {
		if r.Offset < 5 {
			toCommit = append(toCommit, r)
		}
	}
	if err := cl.CommitRecords(ctxT(t, 10*time.Second), toCommit...); err != nil {
		t.Fatalf("CommitRecords: %v", err)
	}
	offs, err := adm.FetchOffsets(ctxT(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	for p := range perPart {
		o, ok := offs.Lookup(topic, p)
		if !ok || o.Err != nil || o.At != 5 {
			t.Fatalf("after CommitRecords p%d: %+v (ok=%v)", p, o, ok)
		}
	}
	cl.Close() // leaves the group

	// a new member resumes at offset 5 on every partition
	cl2 := newClient(t, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	got2 := pollN(t, cl2, 30, 30*time.Second)
	if len(got2) != 30 {
		t.Fatalf("resume: %d records, want 30", len(got2))
	}
	for _, r := range got2 {
		if r.Offset < 5 {
			t.Fatalf("resumed member re-read committed record p%d@%d", r.Partition, r.Offset)
		}
	}
	// CommitUncommittedOffsets commits the end of what was polled
	if err := cl2.CommitUncommittedOffsets(ctxT(t, 10*time.Second)); err != nil {
		t.Fatalf("CommitUncommittedOffsets: %v", err)
	}
	offs, err = adm.FetchOffsets(ctxT(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	for p, n := range perPart {
		o, _ := offs.Lookup(topic, p)
		if o.At != n {
			t.Fatalf("after CommitUncommittedOffsets p%d committed %d, want %d", p, o.At, n)
		}
	}
	// the member sees the committed offsets too
	committed := cl2.CommittedOffsets()
	for p, n := range perPart {
		if committed[topic][p].Offset != n {
			t.Fatalf("client CommittedOffsets p%d = %d, want %d", p, committed[topic][p].Offset, n)
		}
	}
}

type member struct {
	name       string
	cl         *kgo.Client
	mu         sync.Mutex
	assigned   map[int32]bool
	records    syncSet[string]
	commitErrs syncSet[string]
	cancel     context.CancelFunc
	done       chan struct{}
}

func (m *member) owned() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int32
	for p := range m.assigned {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// startMember joins the group and polls in the background, committing what it
// processed after each poll.
func startMember(t *testing.T, name, group, topic string, balancer kgo.GroupBalancer) *member {
	t.Helper()
	m := &member{name: name, assigned: map[int32]bool{}, done: make(chan struct{})}
	opts := []kgo.Opt{
		kgo.ClientID("member-" + name), kgo.ConsumerGroup(group),
		// members learn about a rebalance on their next heartbeat (default every 3 s)
		kgo.HeartbeatInterval(300 * time.Millisecond),
		// the leader notices new partitions on its next metadata refresh
		kgo.MetadataMaxAge(time.Second), kgo.MetadataMinAge(200 * time.Millisecond), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.Balancers(balancer), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			m.mu.Lock()
			for _, p := range a[topic] {
				m.assigned[p] = true
			}
			m.mu.Unlock()
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, r map[string][]int32) {
			m.mu.Lock()
			for _, p := range r[topic] {
				delete(m.assigned, p)
			}
			m.mu.Unlock()
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) {
			m.mu.Lock()
			for _, p := range l[topic] {
				delete(m.assigned, p)
			}
			m.mu.Unlock()
		}),
	}
	cl, err := kgo.NewClient(append(baseOpts(t, shared), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	m.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) {
				m.records.add(fmt.Sprintf("%d@%d", r.Partition, r.Offset))
			})
			// autocommit is off: commit exactly what was processed
			if rs := fs.Records(); len(rs) > 0 {
				if err := cl.CommitRecords(ctx, rs...); err != nil && ctx.Err() == nil {
					m.commitErrs.add(err.Error())
				}
			}
		}
	}()
	t.Cleanup(m.stop)
	return m
}

func (m *member) stop() {
	if m.cl == nil {
		return
	}
	m.cancel()
	<-m.done
	m.cl.Close()
	m.cl = nil
}

func testTwoMembers(t *testing.T, balancer kgo.GroupBalancer) {
	adm := setup(t)
	const parts = 6
	topic := createTopic(t, adm, parts, nil)
	group := uniq("grp")
	prod := newClient(t)
	if err := prod.ProduceSync(ctxT(t, 10*time.Second), makeRecords(topic, 60, "a")...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	a := startMember(t, "a", group, topic, balancer)
	waitFor(t, 30*time.Second, "member a owns all partitions", func() bool { return len(a.owned()) == parts })
	b := startMember(t, "b", group, topic, balancer)
	split := func() bool {
		oa, ob := a.owned(), b.owned()
		if len(oa) == 0 || len(ob) == 0 || len(oa)+len(ob) != parts {
			return false
		}
		all := map[int32]bool{}
		for _, p := range append(oa, ob...) {
			all[p] = true
		}
		return len(all) == parts
	}
	waitFor(t, 45*time.Second, "a and b share the partitions", split)
	oa, ob := a.owned(), b.owned()
	if len(oa) != parts/2 || len(ob) != parts/2 {
		t.Fatalf("unbalanced assignment: a=%v b=%v", oa, ob)
	}
	// broker view: two members, assignment covers every partition
	waitFor(t, 20*time.Second, "DescribeGroups shows 2 stable members", func() bool {
		dg, err := adm.DescribeGroups(context.Background(), group)
		if err != nil {
			return false
		}
		g := dg[group]
		return g.State == "Stable" && len(g.Members) == 2 && len(g.AssignedPartitions()[topic]) == parts
	})
	// new records are consumed by both members, together exactly once each
	if err := prod.ProduceSync(ctxT(t, 10*time.Second), makeRecords(topic, 60, "b")...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "all 120 records consumed", func() bool {
		sa, sb := a.records.snapshot(), b.records.snapshot()
		all := map[string]bool{}
		for k := range sa {
			all[k] = true
		}
		for k := range sb {
			all[k] = true
		}
		return len(all) == 120
	})
	// b leaves: a gets everything back
	b.stop()
	waitFor(t, 45*time.Second, "a owns all partitions after b left", func() bool { return len(a.owned()) == parts })
	waitFor(t, 20*time.Second, "DescribeGroups shows 1 member", func() bool {
		dg, err := adm.DescribeGroups(context.Background(), group)
		return err == nil && dg[group].State == "Stable" && len(dg[group].Members) == 1
	})
	// committed offsets reach the end of every partition
	ends, err := adm.ListEndOffsets(ctxT(t, 10*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "group committed to the end", func() bool {
		offs, err := adm.FetchOffsets(context.Background(), group)
		if err != nil {
			return false
		}
		ok := true
		ends.Each(func(e kadmListedOffset) {
			o, found := offs.Lookup(topic, e.Partition)
			if !found || o.At != e.Offset {
				ok = false
			}
		})
		return ok
	})
}

func TestKgoGroupTwoMembersCooperativeSticky(t *testing.T) {
	testTwoMembers(t, kgo.CooperativeStickyBalancer())
}

func TestKgoGroupTwoMembersRangeEager(t *testing.T) {
	testTwoMembers(t, kgo.RangeBalancer())
}

// Static membership (KIP-345): a member that comes back with the same
// group.instance.id within the session timeout takes its old place without a
// rebalance (same generation, same assignment); kadm's LeaveGroup by instance
// id then removes it.
func TestKgoStaticMembership(t *testing.T) {
	adm := setup(t)
	topic := createTopic(t, adm, 3, nil)
	group := uniq("static")
	instance := "static-instance-1"
	join := func() (*kgo.Client, map[int32]bool) {
		assigned := make(chan map[int32]bool, 4)
		cl, err := kgo.NewClient(append(baseOpts(t, shared), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.InstanceID(instance), kgo.SessionTimeout(20*time.Second), kgo.HeartbeatInterval(300*time.Millisecond),
			kgo.DisableAutoCommit(), kgo.FetchMaxWait(200*time.Millisecond),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
				m := map[int32]bool{}
				for _, p := range a[topic] {
					m[p] = true
				}
				assigned <- m
			}))...)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for ctx := context.Background(); ; {
				if fs := cl.PollFetches(ctx); fs.IsClientClosed() {
					return
				}
			}
		}()
		select {
		case a := <-assigned:
			return cl, a
		case <-time.After(30 * time.Second):
			cl.Close()
			t.Fatalf("static member got no assignment")
		}
		return nil, nil
	}
	cl1, a1 := join()
	if len(a1) != 3 {
		t.Fatalf("first static member assigned %v", a1)
	}
	member1, gen1 := cl1.GroupMetadata()
	dg, err := adm.DescribeGroups(ctxT(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	if ms := dg[group].Members; len(ms) != 1 || ms[0].InstanceID == nil || *ms[0].InstanceID != instance {
		t.Fatalf("DescribeGroups members: %+v", ms)
	}
	cl1.Close() // a static member does not leave the group on close

	dg, err = adm.DescribeGroups(ctxT(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	if d := dg[group]; len(d.Members) != 1 || d.State != "Stable" {
		t.Fatalf("after the static member closed: state %s, %d members (it must stay until its session times out)", d.State, len(d.Members))
	}

	cl2, a2 := join()
	defer cl2.Close()
	member2, gen2 := cl2.GroupMetadata()
	if len(a2) != 3 {
		t.Fatalf("rejoined static member assigned %v", a2)
	}
	if gen2 != gen1 {
		t.Errorf("static rejoin bumped the generation %d → %d (a rebalance)", gen1, gen2)
	}
	if member2 == member1 {
		t.Errorf("static rejoin kept member id %s (Kafka hands out a new one)", member1)
	}
	dg, err = adm.DescribeGroups(ctxT(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	if ms := dg[group].Members; len(ms) != 1 || ms[0].MemberID != member2 {
		t.Fatalf("after the static rejoin: members %+v, want only %s", ms, member2)
	}

	lr, err := adm.LeaveGroup(ctxT(t, 10*time.Second), kadm.LeaveGroup(group).InstanceIDs(instance))
	if err != nil || lr.Error() != nil {
		t.Fatalf("LeaveGroup by instance id: %v / %v", err, lr.Error())
	}
	waitFor(t, 15*time.Second, "group empty after LeaveGroup", func() bool {
		dg, err := adm.DescribeGroups(context.Background(), group)
		return err == nil && len(dg[group].Members) == 0
	})
}
