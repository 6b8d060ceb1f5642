package io.criu4j.transport.tcp;

import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.criu4j.TransportException;
import io.criu4j.spi.Connection;
import io.criu4j.spi.Listener;
import io.criu4j.spi.Transport;
import io.criu4j.spi.Transports;
import io.criu4j.testing.TransportContractTest;
import io.criu4j.testing.transport.Streams;
import java.net.InetAddress;
import java.net.URI;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The TCP transport keeps the transport contract, and these TCP-specific promises. */
@Timeout(value = 20, unit = SECONDS)
class TcpTransportTest extends TransportContractTest {
  private static final Duration PATIENCE = Duration.ofSeconds(10);

  @Override
  protected Transport transport() {
    return TcpTransport.create();
  }

  @Override
  protected URI newListenUri() {
    return URI.create("tcp://127.0.0.1:0");
  }

  @Override
  protected List<URI> malformedUris() {
    return List.of(
        URI.create("tcp://127.0.0.1"),
        URI.create("tcp://127.0.0.1:70000"),
        URI.create("tcp:127.0.0.1:4000"),
        URI.create("tcp:///path-only"),
        URI.create("tcp://bad_host:4000"),
        URI.create("tcp://127.0.0.1:4000/path"),
        URI.create("tcp://user@127.0.0.1:4000"),
        URI.create("tcp://127.0.0.1:4000#fragment"));
  }

  @Test
  void isDiscoveredByTheTcpScheme() {
    assertThat(Transports.forUri(URI.create("tcp://example.org:4000")))
        .isInstanceOf(TcpTransport.class);
    assertThat(new TcpTransportProvider().isAvailable()).isTrue();
  }

  @Test
  void aListenerOnPortZeroReportsTheBoundPort() throws Exception {
    Listener listener = listen();

    assertThat(listener.address().getHost()).isEqualTo("127.0.0.1");
    assertThat(listener.address().getPort()).isPositive();
  }

  @Test
  void eachSideSeesTheOthersTcpAddress() throws Exception {
    Pair pair = connectPair();

    assertThat(pair.client().peer().address()).isEqualTo(pair.listener().address().toString());
    assertThat(pair.server().peer().address()).startsWith("tcp://127.0.0.1:")
        .isNotEqualTo(pair.listener().address().toString());
    assertThat(pair.server().peer().credentials()).isEmpty();
  }

  @Test
  void connectingToPortZeroIsAnIllegalArgument() {
    URI portZero = URI.create("tcp://127.0.0.1:0");

    assertThatThrownBy(() -> transport().connect(portZero, PATIENCE))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining(portZero.toString())
        .hasMessageContaining("port 0");
  }

  @Test
  void aHostThatDoesNotResolveIsATransportExceptionNamingTheAddress() {
    URI nowhere = URI.create("tcp://no-such-host.invalid:4000");

    assertThatThrownBy(() -> transport().connect(nowhere, PATIENCE))
        .isInstanceOf(TransportException.class)
        .hasMessageContaining(nowhere.toString());
  }

  @Test
  void aRefusedConnectionCarriesEconnrefused() throws Exception {
    Listener listener = listen();
    URI address = listener.address();
    listener.close();

    assertThatThrownBy(() -> transport().connect(address, PATIENCE))
        .isInstanceOfSatisfying(TransportException.class,
            e -> assertThat(e.errnoName()).isEqualTo("ECONNREFUSED"));
  }

  @Test
  void worksOverIpv6Loopback() throws Exception {
    assumeTrue(ipv6LoopbackWorks(), "no IPv6 loopback here");
    Listener listener = track(transport().listen(URI.create("tcp://[::1]:0")));

    assertThat(listener.address().toString()).startsWith("tcp://[::1]:");
    Connection client = track(transport().connect(listener.address(), PATIENCE));
    Connection server = track(listener.accept(PATIENCE));
    Streams.writeUtf8(client, "over v6");
    client.shutdownOutput();
    assertThat(Streams.readUtf8ToEnd(server)).isEqualTo("over v6");
  }

  @Test
  void customSettingsStillMoveBytes() throws Exception {
    Transport tuned = TcpTransport.builder()
        .tcpNoDelay(false)
        .keepAlive(false)
        .sendBufferSize(1 << 20)
        .receiveBufferSize(1 << 20)
        .backlog(4)
        .build();
    Listener listener = track(tuned.listen(newListenUri()));
    Connection client = track(tuned.connect(listener.address(), PATIENCE));
    Connection server = track(listener.accept(PATIENCE));

    Streams.writeUtf8(client, "tuned");
    client.shutdownOutput();
    assertThat(Streams.readUtf8ToEnd(server)).isEqualTo("tuned");
    assertThat(tuned.toString()).contains("backlog=4");
  }

  @Test
  void theBuilderRejectsImpossibleSettingsNamingThem() {
    assertThatThrownBy(() -> TcpTransport.builder().backlog(0))
        .isInstanceOf(IllegalArgumentException.class).hasMessage("backlog < 1: 0");
    assertThatThrownBy(() -> TcpTransport.builder().sendBufferSize(-1))
        .isInstanceOf(IllegalArgumentException.class).hasMessage("sendBufferSize < 0: -1");
    assertThatThrownBy(() -> TcpTransport.builder().receiveBufferSize(-2))
        .isInstanceOf(IllegalArgumentException.class).hasMessage("receiveBufferSize < 0: -2");
    assertThat(TcpTransport.create().toBuilder().build()).hasToString(
        TcpTransport.create().toString());
  }

  private static boolean ipv6LoopbackWorks() {
    try (var channel = java.nio.channels.ServerSocketChannel.open()) {
      channel.bind(new java.net.InetSocketAddress(InetAddress.getByName("::1"), 0));
      return true;
    } catch (Exception e) {
      return false;
    }
  }
}
