package fjordtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Transactions are not implemented by Fjord yet: a transactional producer
// must get a clear Kafka error quickly, never hang, and nothing may be written.
//
// FJORD BUG: FindCoordinator(key_type=1, transaction) answers the retriable
// COORDINATOR_NOT_AVAILABLE, so both clients retry until their own timeouts
// (franz-go: until the produce context ends; sarama: Transaction.Retry.Max=50
// rounds of FindCoordinator + metadata waits, minutes) instead of failing.
// Kafka always has a transaction coordinator; answering this node as the
// coordinator lets InitProducerId return its TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
// which both clients treat as fatal. These tests fail until that is fixed.

func TestKgoTransactionsRefused(t *testing.T) {
	adm := setup(t)
	topic := createTopic(t, adm, 1, nil)
	cl := newClient(t, kgo.TransactionalID(uniq("txn")), kgo.TransactionTimeout(10*time.Second))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		err := cl.BeginTransaction()
		if err == nil {
			err = cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("in a txn")}).FirstErr()
		}
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("transactional produce still blocked after 15s (its 10s context ignored): no Kafka error")
	}
	elapsed := time.Since(start)
	if err == nil {
		t.Fatalf("transactional produce succeeded")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("transactional produce hung for %v (no Kafka error): %v", elapsed, err)
	}
	var ke *kerr.Error
	if !errors.As(err, &ke) {
		t.Fatalf("transactional produce failed without a Kafka error code: %v (after %v)", err, elapsed)
	}
	t.Logf("refused after %v with %v", elapsed, err)
	if elapsed > 10*time.Second {
		t.Errorf("took %v to refuse", elapsed)
	}
	end, err := adm.ListEndOffsets(ctxT(t, 10*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := end.Lookup(topic, 0); o.Offset != 0 {
		t.Fatalf("refused transaction wrote %d records", o.Offset)
	}
}

func TestSaramaTransactionsRefused(t *testing.T) {
	attachLog(t, shared)
	cfg := saramaConfig()
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Transaction.ID = uniq("stxn")

	type result struct {
		p   sarama.SyncProducer
		err error
	}
	ch := make(chan result, 1)
	start := time.Now()
	go func() {
		p, err := sarama.NewSyncProducer([]string{shared.Addr}, cfg)
		if err == nil {
			err = p.BeginTxn()
			if err == nil {
				_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: uniq("stxn-topic"), Value: sarama.StringEncoder("x")})
				if err == nil {
					err = p.CommitTxn()
				}
			}
		}
		ch <- result{p, err}
	}()
	select {
	case r := <-ch:
		if r.p != nil {
			defer r.p.Close()
		}
		if r.err == nil {
			t.Fatalf("sarama transactional producer succeeded")
		}
		var ke sarama.KError
		if !errors.As(r.err, &ke) {
			t.Fatalf("sarama transactional producer failed without a Kafka error: %v", r.err)
		}
		t.Logf("refused after %v with %v", time.Since(start), r.err)
	case <-time.After(20 * time.Second):
		t.Fatalf("sarama transactional producer hung for 20s (no Kafka error)")
	}
}
