package fjordtest

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Everything a Go client can observe survives a graceful restart: records,
// topic configs, committed offsets, and the idempotent producer's state (the
// same client keeps producing after it reconnects, without duplicates or gaps).
func TestKgoStateSurvivesRestart(t *testing.T) {
	b := ownBroker(t)
	adm := kadm.NewClient(newClientOn(t, b, kgo.MetadataMinAge(50*time.Millisecond)))
	ctx := ctxT(t, 60*time.Second)
	topic := uniq("restart")
	if _, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"retention.ms": kadm.StringPtr("86400000")}, topic); err != nil {
		t.Fatal(err)
	}
	prod := newClientOn(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RecordRetries(1000), kgo.RetryTimeout(30*time.Second))
	produce := func(from, n int) {
		t.Helper()
		var rs []*kgo.Record
		for i := from; i < from+n; i++ {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(i % 2), Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("v%d", i))})
		}
		if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("produce %d..%d: %v", from, from+n, err)
		}
	}
	produce(0, 100)
	group := uniq("restart-g")
	var os kadm.Offsets
	os.AddOffset(topic, 0, 30, -1)
	os.AddOffset(topic, 1, 40, -1)
	if err := adm.CommitAllOffsets(ctx, group, os); err != nil {
		t.Fatal(err)
	}

	if err := b.Restart(); err != nil {
		t.Fatalf("restart: %v", err)
	}

	produce(100, 100) // same producer id, sequences continue
	got := pollN(t, newClientOn(t, b, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond)), 200, 30*time.Second)
	seen := map[string]int{}
	var pid int64 = -2
	for _, r := range got {
		seen[string(r.Key)]++
		if string(r.Value) != "v"+string(r.Key) {
			t.Fatalf("key %s value %s", r.Key, r.Value)
		}
		if pid == -2 {
			pid = r.ProducerID
		} else if r.ProducerID != pid {
			t.Fatalf("producer id changed across the restart: %d then %d", pid, r.ProducerID)
		}
	}
	for i := 0; i < 200; i++ {
		if seen[fmt.Sprint(i)] != 1 {
			t.Fatalf("record %d read %d times", i, seen[fmt.Sprint(i)])
		}
	}
	end, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 2; p++ {
		if o, _ := end.Lookup(topic, p); o.Offset != 100 {
			t.Errorf("p%d end offset %d after restart, want 100", p, o.Offset)
		}
	}
	fo, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := fo.Lookup(topic, 0); o.At != 30 {
		t.Errorf("committed p0 after restart: %d, want 30", o.At)
	}
	if o, _ := fo.Lookup(topic, 1); o.At != 40 {
		t.Errorf("committed p1 after restart: %d, want 40", o.At)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range rc[0].Configs {
		if c.Key == "retention.ms" {
			found = c.MaybeValue() == "86400000"
		}
	}
	if !found {
		t.Errorf("retention.ms lost across restart: %+v", rc[0].Configs)
	}
	// a group member resumes at the committed offsets
	cl := newClientOn(t, b, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.FetchMaxWait(200*time.Millisecond))
	rs := pollN(t, cl, 200-30-40, 30*time.Second)
	first := map[int32]int64{0: -1, 1: -1}
	for _, r := range rs {
		if first[r.Partition] == -1 {
			first[r.Partition] = r.Offset
		}
	}
	if first[0] != 30 || first[1] != 40 {
		t.Errorf("group resumed at %v, want p0 30, p1 40", first)
	}
}
