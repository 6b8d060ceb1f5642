package io.criu4j.spi;

import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;

import io.criu4j.testing.TransportContractTest;
import java.net.URI;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The in-memory transport keeps the transport contract, and a few promises of its own. */
@Timeout(value = 20, unit = SECONDS)
class InMemoryTransportTest extends TransportContractTest {
  private static final AtomicLong names = new AtomicLong();

  @Override
  protected Transport transport() {
    return Transports.inMemory();
  }

  @Override
  protected URI newListenUri() {
    return URI.create("mem://contract-" + names.incrementAndGet());
  }

  @Override
  protected List<URI> malformedUris() {
    return List.of(
        URI.create("mem:///"),
        URI.create("mem:opaque"),
        URI.create("mem://name/path"),
        URI.create("mem://name#fragment"));
  }

  @Test
  void isDiscoveredByTheMemScheme() {
    assertThat(Transports.forUri(URI.create("mem://anything"))).isSameAs(transport());
    assertThat(Transports.forScheme("MEM")).isSameAs(transport());
  }

  @Test
  void theClientSeesTheListenersAddressAndTheServerANumberedClient() throws Exception {
    Pair pair = connectPair();

    assertThat(pair.client().peer().address()).isEqualTo(pair.listener().address().toString());
    assertThat(pair.server().peer().address()).startsWith(pair.listener().address() + "#");
    assertThat(pair.server().peer().credentials()).isEmpty();
    assertThat(pair.server().peer().principal()).isEmpty();
  }

  @Test
  void aClosedListenersNameCanBeListenedOnAgain() throws Exception {
    URI address = newListenUri();
    transport().listen(address).close();

    track(transport().listen(address));
  }
}
