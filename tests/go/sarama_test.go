package fjordtest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// saramaVersion is the protocol version sarama is told the broker speaks: the
// newest sarama knows (Kafka 4.3); the producer test also runs older ones.
var saramaVersion = sarama.MaxVersion

func saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = saramaVersion
	c.ClientID = "fjord-go-sarama"
	c.Metadata.Retry.Backoff = 50 * time.Millisecond
	c.Producer.Retry.Backoff = 50 * time.Millisecond
	c.Consumer.MaxWaitTime = 200 * time.Millisecond
	c.Net.DialTimeout = 5 * time.Second
	c.Net.ReadTimeout = 15 * time.Second
	c.Net.WriteTimeout = 15 * time.Second
	return c
}

func saramaAdmin(t *testing.T) sarama.ClusterAdmin {
	t.Helper()
	adm, err := sarama.NewClusterAdmin([]string{shared.Addr}, saramaConfig())
	if err != nil {
		t.Fatalf("NewClusterAdmin: %v", err)
	}
	t.Cleanup(func() { adm.Close() })
	return adm
}

func saramaTopic(t *testing.T, adm sarama.ClusterAdmin, partitions int32) string {
	t.Helper()
	name := uniq("sarama")
	if err := adm.CreateTopic(name, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	return name
}

// readPartition reads n messages of one partition from offset with the plain consumer.
func readPartition(t *testing.T, topic string, partition int32, offset int64, n int) []*sarama.ConsumerMessage {
	t.Helper()
	c, err := sarama.NewConsumer([]string{shared.Addr}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc, err := c.ConsumePartition(topic, partition, offset)
	if err != nil {
		t.Fatalf("ConsumePartition %s/%d@%d: %v", topic, partition, offset, err)
	}
	defer pc.Close()
	var out []*sarama.ConsumerMessage
	timeout := time.After(20 * time.Second)
	for len(out) < n {
		select {
		case m := <-pc.Messages():
			out = append(out, m)
		case err := <-pc.Errors():
			t.Fatalf("consume %s/%d: %v", topic, partition, err)
		case <-timeout:
			t.Fatalf("got %d of %d messages from %s/%d", len(out), n, topic, partition)
		}
	}
	return out
}

func TestSaramaSyncProducerIdempotent(t *testing.T) {
	attachLog(t, shared)
	adm := saramaAdmin(t)
	for _, v := range []sarama.KafkaVersion{sarama.DefaultVersion, sarama.V3_6_0_0, sarama.MaxVersion} {
		t.Run(v.String(), func(t *testing.T) { testSaramaSyncProducer(t, adm, v) })
	}
}

func testSaramaSyncProducer(t *testing.T, adm sarama.ClusterAdmin, version sarama.KafkaVersion) {
	topic := saramaTopic(t, adm, 3)
	cfg := saramaConfig()
	cfg.Version = version
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Producer.Return.Successes = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Partitioner = sarama.NewHashPartitioner
	p, err := sarama.NewSyncProducer([]string{shared.Addr}, cfg)
	if err != nil {
		t.Fatalf("NewSyncProducer: %v", err)
	}
	defer p.Close()
	type at struct {
		p int32
		o int64
	}
	where := map[string]at{}
	next := map[int32]int64{}
	for i := 0; i < 30; i++ {
		key := fmt.Sprintf("key-%d", i%10)
		part, off, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key),
			Value:   sarama.StringEncoder(fmt.Sprintf("v%d", i)),
			Headers: []sarama.RecordHeader{{Key: []byte("i"), Value: []byte(fmt.Sprint(i))}}})
		if err != nil {
			t.Fatalf("SendMessage %d: %v", i, err)
		}
		if off != next[part] {
			t.Fatalf("message %d: offset %d on p%d, want %d", i, off, part, next[part])
		}
		next[part]++
		if prev, ok := where[key]; ok && prev.p != part {
			t.Fatalf("key %s moved from p%d to p%d", key, prev.p, part)
		}
		where[key] = at{part, off}
	}
	// SendMessages (a batch)
	var batch []*sarama.ProducerMessage
	for i := 0; i < 10; i++ {
		batch = append(batch, &sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder("batch")})
	}
	if err := p.SendMessages(batch); err != nil {
		t.Fatalf("SendMessages: %v", err)
	}
	total := 0
	for part, n := range next {
		msgs := readPartition(t, topic, part, sarama.OffsetOldest, int(n))
		for i, m := range msgs {
			if m.Offset != int64(i) {
				t.Fatalf("p%d: message %d has offset %d", part, i, m.Offset)
			}
			if len(m.Headers) != 1 || string(m.Headers[0].Key) != "i" {
				t.Fatalf("p%d@%d: headers %v", part, m.Offset, m.Headers)
			}
			total++
		}
	}
	if total != 30 {
		t.Fatalf("read %d keyed messages, want 30", total)
	}
}

func TestSaramaAsyncProducerCodecs(t *testing.T) {
	attachLog(t, shared)
	adm := saramaAdmin(t)
	type codecCase struct {
		name       string
		codec      sarama.CompressionCodec
		idempotent bool
	}
	var cases []codecCase
	for _, idem := range []bool{false, true} {
		for _, c := range []codecCase{
			{"none", sarama.CompressionNone, idem},
			{"gzip", sarama.CompressionGZIP, idem},
			{"snappy", sarama.CompressionSnappy, idem},
			{"lz4", sarama.CompressionLZ4, idem},
			{"zstd", sarama.CompressionZSTD, idem},
		} {
			if idem {
				c.name += "-idempotent"
			}
			cases = append(cases, c)
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			topic := saramaTopic(t, adm, 1)
			cfg := saramaConfig()
			cfg.Producer.Compression = tc.codec
			cfg.Producer.Return.Successes = true
			cfg.Producer.Return.Errors = true
			cfg.Producer.RequiredAcks = sarama.WaitForLocal
			if tc.idempotent {
				cfg.Producer.Idempotent = true
				cfg.Producer.RequiredAcks = sarama.WaitForAll
				cfg.Net.MaxOpenRequests = 1
			}
			cfg.Producer.Flush.Frequency = 5 * time.Millisecond
			p, err := sarama.NewAsyncProducer([]string{shared.Addr}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			const n = 300
			go func() {
				for i := 0; i < n; i++ {
					p.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprintf("k%d", i)),
						Value: sarama.StringEncoder(fmt.Sprintf("%s-%d-payload-payload-payload", tc.name, i)), Metadata: i}
				}
			}()
			offsets := map[int]int64{}
			timeout := time.After(30 * time.Second)
			for len(offsets) < n {
				select {
				case m := <-p.Successes():
					offsets[m.Metadata.(int)] = m.Offset
				case e := <-p.Errors():
					t.Fatalf("async produce (%s): %v", tc.name, e.Err)
				case <-timeout:
					t.Fatalf("%d of %d successes", len(offsets), n)
				}
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			seen := map[int64]bool{}
			for _, o := range offsets {
				seen[o] = true
			}
			if len(seen) != n {
				t.Fatalf("offsets not distinct: %d distinct of %d", len(seen), n)
			}
			msgs := readPartition(t, topic, 0, sarama.OffsetOldest, n)
			for _, m := range msgs {
				var i int
				fmt.Sscanf(string(m.Key), "k%d", &i)
				if offsets[i] != m.Offset || string(m.Value) != fmt.Sprintf("%s-%d-payload-payload-payload", tc.name, i) {
					t.Fatalf("message %s at %d: value %q, produced at %d", m.Key, m.Offset, m.Value, offsets[i])
				}
			}
		})
	}
}

func TestSaramaConsumePartition(t *testing.T) {
	attachLog(t, shared)
	adm := saramaAdmin(t)
	topic := saramaTopic(t, adm, 2)
	rs := produceTo(t, topic, 1, 10, nil)
	msgs := readPartition(t, topic, 1, 4, 6)
	for i, m := range msgs {
		if m.Offset != int64(4+i) || string(m.Value) != string(rs[4+i].Value) || m.Partition != 1 || m.Topic != topic {
			t.Fatalf("message %d: %s/%d@%d %q", i, m.Topic, m.Partition, m.Offset, m.Value)
		}
	}
	// OffsetNewest: only records produced afterwards
	c, err := sarama.NewConsumer([]string{shared.Addr}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc, err := c.ConsumePartition(topic, 1, sarama.OffsetNewest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if hwm := pc.HighWaterMarkOffset(); hwm != 10 && hwm != 0 {
		t.Errorf("HighWaterMarkOffset %d", hwm)
	}
	produceTo(t, topic, 1, 1, nil)
	select {
	case m := <-pc.Messages():
		if m.Offset != 10 {
			t.Fatalf("OffsetNewest delivered offset %d, want 10", m.Offset)
		}
	case err := <-pc.Errors():
		t.Fatal(err)
	case <-time.After(20 * time.Second):
		t.Fatal("no message after OffsetNewest")
	}
	// out of range offset is an error
	if _, err := c.ConsumePartition(topic, 0, 1000); !errors.Is(err, sarama.ErrOffsetOutOfRange) {
		t.Errorf("ConsumePartition at 1000 of empty partition: %v, want ErrOffsetOutOfRange", err)
	}
	parts, err := c.Partitions(topic)
	if err != nil || len(parts) != 2 {
		t.Errorf("Partitions: %v %v", parts, err)
	}
}

// groupHandler records claims and messages, marking every message.
type groupHandler struct {
	name   string
	mu     sync.Mutex
	claims map[int32]bool
	first  map[int32]int64 // first offset seen per partition
	seen   map[string]bool
	setups int
}

func newGroupHandler(name string) *groupHandler {
	return &groupHandler{name: name, claims: map[int32]bool{}, first: map[int32]int64{}, seen: map[string]bool{}}
}

func (h *groupHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.setups++
	h.claims = map[int32]bool{}
	for _, ps := range s.Claims() {
		for _, p := range ps {
			h.claims[p] = true
		}
	}
	return nil
}

func (h *groupHandler) Cleanup(s sarama.ConsumerGroupSession) error {
	s.Commit()
	h.mu.Lock()
	h.claims = map[int32]bool{}
	h.mu.Unlock()
	return nil
}

func (h *groupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.mu.Lock()
		if _, ok := h.first[m.Partition]; !ok {
			h.first[m.Partition] = m.Offset
		}
		h.seen[fmt.Sprintf("%d@%d", m.Partition, m.Offset)] = true
		h.mu.Unlock()
		s.MarkMessage(m, "")
		s.Commit()
	}
	return nil
}

func (h *groupHandler) owned() []int32 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []int32
	for p := range h.claims {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (h *groupHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.seen)
}

type saramaMember struct {
	g      sarama.ConsumerGroup
	h      *groupHandler
	cancel context.CancelFunc
	done   chan error
}

func startSaramaMember(t *testing.T, group, topic, name string, strategy sarama.BalanceStrategy) *saramaMember {
	t.Helper()
	cfg := saramaConfig()
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{strategy}
	cfg.Consumer.Group.Heartbeat.Interval = 300 * time.Millisecond
	g, err := sarama.NewConsumerGroup([]string{shared.Addr}, group, cfg)
	if err != nil {
		t.Fatalf("NewConsumerGroup: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &saramaMember{g: g, h: newGroupHandler(name), cancel: cancel, done: make(chan error, 1)}
	go func() {
		var err error
		for ctx.Err() == nil {
			if err = g.Consume(ctx, []string{topic}, m.h); err != nil {
				break
			}
		}
		m.done <- err
	}()
	go func() {
		for err := range g.Errors() {
			t.Logf("sarama group %s error: %v", name, err)
		}
	}()
	t.Cleanup(m.stop)
	return m
}

func (m *saramaMember) stop() {
	if m.g == nil {
		return
	}
	m.cancel()
	<-m.done
	m.g.Close()
	m.g = nil
}

func TestSaramaConsumerGroup(t *testing.T) {
	attachLog(t, shared)
	adm := saramaAdmin(t)
	const parts = 4
	topic := saramaTopic(t, adm, parts)
	group := uniq("sgrp")
	for p := int32(0); p < parts; p++ {
		produceTo(t, topic, p, 5, nil)
	}
	a := startSaramaMember(t, group, topic, "a", sarama.NewBalanceStrategyRange())
	b := startSaramaMember(t, group, topic, "b", sarama.NewBalanceStrategyRange())
	waitFor(t, 60*time.Second, "claims of a and b cover every partition", func() bool {
		oa, ob := a.h.owned(), b.h.owned()
		all := map[int32]bool{}
		for _, p := range append(oa, ob...) {
			all[p] = true
		}
		return len(oa) > 0 && len(ob) > 0 && len(all) == parts && len(oa)+len(ob) == parts
	})
	waitFor(t, 30*time.Second, "20 messages consumed", func() bool {
		all := map[string]bool{}
		for _, h := range []*groupHandler{a.h, b.h} {
			h.mu.Lock()
			for k := range h.seen {
				all[k] = true
			}
			h.mu.Unlock()
		}
		return len(all) == 4*5
	})
	groups, err := adm.ListConsumerGroups()
	if err != nil || groups[group] != "consumer" {
		t.Fatalf("ListConsumerGroups: %v %v", err, groups)
	}
	desc, err := adm.DescribeConsumerGroups([]string{group})
	if err != nil || len(desc) != 1 || desc[0].State != "Stable" || len(desc[0].Members) != 2 || desc[0].Protocol != "range" {
		t.Fatalf("DescribeConsumerGroups: %v %+v", err, desc)
	}
	waitFor(t, 20*time.Second, "committed offsets at 5 on every partition", func() bool {
		r, err := adm.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1, 2, 3}})
		if err != nil {
			return false
		}
		for p := int32(0); p < parts; p++ {
			b := r.GetBlock(topic, p)
			if b == nil || b.Err != sarama.ErrNoError || b.Offset != 5 {
				return false
			}
		}
		return true
	})
	a.stop()
	b.stop()

	// second run: resumes from the committed offsets
	for p := int32(0); p < parts; p++ {
		produceTo(t, topic, p, 3, nil)
	}
	c := startSaramaMember(t, group, topic, "c", sarama.NewBalanceStrategySticky())
	waitFor(t, 60*time.Second, "second run consumed 12 new messages", func() bool { return c.h.count() == 12 })
	c.h.mu.Lock()
	for p := int32(0); p < parts; p++ {
		if c.h.first[p] != 5 {
			t.Errorf("second run started p%d at %d, want the committed 5", p, c.h.first[p])
		}
	}
	c.h.mu.Unlock()
}

func TestSaramaClusterAdmin(t *testing.T) {
	attachLog(t, shared)
	adm := saramaAdmin(t)
	topic := uniq("sadm")
	if err := adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"retention.ms": strPtr("7200000")}}, false); err != nil {
		t.Fatal(err)
	}
	err := adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false)
	var te *sarama.TopicError
	if !errors.As(err, &te) || te.Err != sarama.ErrTopicAlreadyExists {
		t.Errorf("create existing topic: %v, want ErrTopicAlreadyExists", err)
	}
	md, err := adm.DescribeTopics([]string{topic})
	if err != nil || len(md) != 1 || md[0].Err != sarama.ErrNoError || len(md[0].Partitions) != 3 {
		t.Fatalf("DescribeTopics: %v %+v", err, md)
	}
	topics, err := adm.ListTopics()
	if err != nil || topics[topic].NumPartitions != 3 {
		t.Fatalf("ListTopics: %v %+v", err, topics[topic])
	}
	cfg, err := adm.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic, ConfigNames: []string{"retention.ms"}})
	if err != nil || len(cfg) != 1 || cfg[0].Value != "7200000" {
		t.Errorf("DescribeConfig retention.ms: %v %+v", err, cfg)
	}

	produceTo(t, topic, 0, 10, nil)
	if err := adm.DeleteRecords(topic, map[int32]int64{0: 4}); err != nil {
		t.Fatalf("DeleteRecords: %v", err)
	}
	msgs := readPartition(t, topic, 0, sarama.OffsetOldest, 6)
	if msgs[0].Offset != 4 {
		t.Fatalf("after DeleteRecords(4) first offset %d", msgs[0].Offset)
	}

	group := uniq("sadm-g")
	if _, err := adm.AlterConsumerGroupOffsets(group, map[string]map[int32]sarama.OffsetAndMetadata{topic: {0: {Offset: 8, Metadata: "m"}}}, nil); err != nil {
		t.Fatalf("AlterConsumerGroupOffsets: %v", err)
	}
	groups, err := adm.ListConsumerGroups()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := groups[group]; !ok {
		t.Errorf("ListConsumerGroups misses %s: %v", group, groups)
	}
	r, err := adm.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1}})
	if err != nil {
		t.Fatal(err)
	}
	if b := r.GetBlock(topic, 0); b == nil || b.Offset != 8 || b.Metadata != "m" {
		t.Errorf("committed p0: %+v", b)
	}
	if b := r.GetBlock(topic, 1); b == nil || b.Offset != -1 {
		t.Errorf("uncommitted p1: %+v, want offset -1", b)
	}
	if err := adm.DeleteConsumerGroupOffset(group, topic, 0); err != nil {
		t.Errorf("DeleteConsumerGroupOffset: %v", err)
	}
	if err := adm.DeleteConsumerGroup(group); err != nil {
		t.Errorf("DeleteConsumerGroup: %v", err)
	}
	brokers, ctrl, err := adm.DescribeCluster()
	if err != nil || len(brokers) != 1 || brokers[0].ID() != ctrl {
		t.Errorf("DescribeCluster: %v %d brokers controller %d", err, len(brokers), ctrl)
	}
	if err := adm.CreatePartitions(topic, 5, nil, false); err != nil {
		t.Errorf("CreatePartitions: %v", err)
	}
	if err := adm.DeleteTopic(topic); err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	waitFor(t, 10*time.Second, "topic deleted", func() bool {
		ts, err := adm.ListTopics()
		_, still := ts[topic]
		return err == nil && !still
	})
}

func strPtr(s string) *string { return &s }
