package dev.fjord.it;

import java.util.Optional;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.TestWatcher;

/**
 * One fjord broker per test class: {@code @RegisterExtension static BrokerExtension broker = new
 * BrokerExtension();}. Started before the first test, SIGTERM after the last; the log tail is
 * printed for every failed test, and the class fails if the broker did not stop cleanly.
 */
public final class BrokerExtension implements BeforeAllCallback, AfterAllCallback, TestWatcher {
    private final String[] flags;
    private FjordBroker broker;

    public BrokerExtension(String... flags) {
        this.flags = flags;
    }

    public FjordBroker get() {
        return broker;
    }

    public String bootstrap() {
        return broker.bootstrap();
    }

    private boolean fjordOnly;

    /** The class tests Fjord-specific behaviour: skipped against an external (oracle) broker. */
    public BrokerExtension fjordOnly() {
        this.fjordOnly = true;
        return this;
    }

    @Override
    public void beforeAll(ExtensionContext context) {
        if (fjordOnly) {
            org.junit.jupiter.api.Assumptions.assumeFalse(FjordBroker.isExternal(), "Fjord-only tests");
        }
        broker = new FjordBroker(flags).start();
    }

    @Override
    public void afterAll(ExtensionContext context) {
        if (broker == null) {
            return;
        }
        boolean wasAlive = broker.alive();
        String tail = broker.logTail(40);
        int rc = broker.stop();
        broker.close();
        if (!wasAlive) {
            throw new AssertionError("fjord died during " + context.getDisplayName() + "\n" + tail);
        }
        if (rc != 0) {
            throw new AssertionError("fjord exited " + rc + " after SIGTERM\n" + tail);
        }
    }

    @Override
    public void testFailed(ExtensionContext context, Throwable cause) {
        if (broker != null) {
            System.err.println("\n[" + context.getDisplayName() + " FAILED] broker " + broker.bootstrap()
                    + (broker.alive() ? " (alive)" : " (DEAD)") + "\n" + broker.logTail(60));
        }
    }

    @Override
    public void testAborted(ExtensionContext context, Throwable cause) {
    }

    @Override
    public void testDisabled(ExtensionContext context, Optional<String> reason) {
    }
}
