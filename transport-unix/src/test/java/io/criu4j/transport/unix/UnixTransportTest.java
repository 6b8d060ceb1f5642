package io.criu4j.transport.unix;

import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.sun.security.auth.module.UnixSystem;
import io.criu4j.TransportException;
import io.criu4j.spi.Listener;
import io.criu4j.spi.PeerCredentials;
import io.criu4j.spi.Transport;
import io.criu4j.spi.Transports;
import io.criu4j.testing.TransportContractTest;
import io.criu4j.testing.transport.Streams;
import java.net.StandardProtocolFamily;
import java.net.URI;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The Unix-domain transport keeps the transport contract, and these socket-file promises. */
@Timeout(value = 20, unit = SECONDS)
class UnixTransportTest extends TransportContractTest {
  private static final Duration PATIENCE = Duration.ofSeconds(10);
  private static final AtomicLong names = new AtomicLong();

  @TempDir
  static Path directory;

  @Override
  protected Transport transport() {
    return UnixTransport.create();
  }

  @Override
  protected URI newListenUri() {
    return UnixTransport.uriOf(directory.resolve("s" + names.incrementAndGet() + ".sock"));
  }

  @Override
  protected List<URI> malformedUris() {
    return List.of(
        URI.create("unix:relative.sock"),
        URI.create("unix:relative/path.sock"),
        URI.create("unix://host/tmp/x.sock"),
        URI.create("unix:///"),
        URI.create("unix:///tmp/directory/"),
        URI.create("unix:///tmp/" + "x".repeat(120)));
  }

  @Test
  void isDiscoveredByTheUnixSchemeOnLinux() {
    assertThat(new UnixTransportProvider().isAvailable()).isTrue();
    assertThat(Transports.forUri(URI.create("unix:///run/agent.sock")))
        .isInstanceOf(UnixTransport.class);
  }

  @Test
  void bothSidesSeeTheKernelVerifiedCredentialsOfTheOther() throws Exception {
    Pair pair = connectPair();
    UnixSystem self = new UnixSystem();
    PeerCredentials expected = PeerCredentials.of((int) self.getUid(), (int) self.getGid());

    assertThat(pair.server().peer().credentials()).contains(expected);
    assertThat(pair.client().peer().credentials()).contains(expected);
    assertThat(pair.server().peer().address()).isEqualTo("unix:unnamed");
    assertThat(pair.client().peer().address()).isEqualTo(pair.listener().address().toString());
  }

  @Test
  void listeningCreatesTheSocketFileAndClosingRemovesIt() throws Exception {
    URI address = newListenUri();
    Path file = Path.of(address.getPath());

    Listener listener = transport().listen(address);
    assertThat(file).exists();
    listener.close();

    assertThat(file).doesNotExist();
  }

  @Test
  void aStaleSocketFileLeftByACrashIsReplaced() throws Exception {
    URI address = newListenUri();
    Path file = Path.of(address.getPath());
    try (ServerSocketChannel crashed = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
      crashed.bind(UnixDomainSocketAddress.of(file)); // the JDK leaves the file behind
    }
    assertThat(file).exists();

    Listener listener = track(transport().listen(address));

    track(transport().connect(listener.address(), PATIENCE));
    assertThat(track(listener.accept(PATIENCE)).isOpen()).isTrue();
  }

  @Test
  void aFileThatIsNotASocketIsNeverReplaced() throws Exception {
    URI address = newListenUri();
    Path file = Path.of(address.getPath());
    Files.writeString(file, "precious");

    assertThatThrownBy(() -> track(transport().listen(address)))
        .isInstanceOfSatisfying(TransportException.class,
            e -> assertThat(e.errnoName()).isEqualTo("EEXIST"))
        .hasMessageContaining(address.toString())
        .hasMessageContaining("not a socket");
    assertThat(file).hasContent("precious");
  }

  @Test
  void aLiveListenersSocketIsNotTakenOver() throws Exception {
    Listener owner = listen();

    assertThatThrownBy(() -> track(transport().listen(owner.address())))
        .isInstanceOfSatisfying(TransportException.class,
            e -> assertThat(e.errnoName()).isEqualTo("EADDRINUSE"));

    var client = track(transport().connect(owner.address(), PATIENCE));
    owner.accept(PATIENCE).close(); // the probe
    var server = track(owner.accept(PATIENCE));
    Streams.writeUtf8(client, "still mine");
    client.shutdownOutput();
    assertThat(Streams.readUtf8ToEnd(server)).isEqualTo("still mine");
  }

  @Test
  void closingDoesNotRemoveAFileThatReplacedTheSocket() throws Exception {
    URI address = newListenUri();
    Path file = Path.of(address.getPath());
    Listener listener = transport().listen(address);
    Files.delete(file);
    Files.writeString(file, "someone else's");

    listener.close();

    assertThat(file).hasContent("someone else's");
  }

  @Test
  void listeningInAMissingDirectoryIsATransportExceptionNamingTheAddress() {
    URI address = UnixTransport.uriOf(directory.resolve("missing/agent.sock"));

    assertThatThrownBy(() -> track(transport().listen(address)))
        .isInstanceOf(TransportException.class)
        .hasMessageContaining(address.toString());
  }

  @Test
  void socketPathsBecomeTripleSlashUris() {
    assertThat(UnixTransport.uriOf(Path.of("/run/criu4j/agent 1.sock")))
        .hasToString("unix:///run/criu4j/agent%201.sock");
    assertThat(UnixAddresses.parse(URI.create("unix:///run/criu4j/agent%201.sock")))
        .isEqualTo(Path.of("/run/criu4j/agent 1.sock"));
    assertThat(UnixAddresses.parse(URI.create("unix:/run/agent.sock")))
        .isEqualTo(Path.of("/run/agent.sock"));
    assertThatThrownBy(() -> UnixTransport.uriOf(Path.of("relative.sock")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("relative.sock");
  }

  @Test
  void theBuilderRejectsABacklogBelowOne() {
    assertThatThrownBy(() -> UnixTransport.builder().backlog(0))
        .isInstanceOf(IllegalArgumentException.class).hasMessage("backlog < 1: 0");
    assertThat(UnixTransport.builder().backlog(3).build().toString())
        .startsWith("UnixTransport{backlog=3, bufferSize=4194304, allowedPeerUids=");
  }

  @Test
  void theBufferSizeIsANonNegativeByteCountWithZeroForTheSystemDefault() {
    assertThatThrownBy(() -> UnixTransport.builder().bufferSize(-1))
        .isInstanceOf(IllegalArgumentException.class).hasMessage("bufferSize < 0: -1");
    assertThat(UnixTransport.builder().bufferSize(0).build().toString())
        .contains("bufferSize=0");
    assertThat(UnixTransport.create().toBuilder().build().toString())
        .contains("bufferSize=4194304");
  }
}
