package io.criu4j.transport.unix;

import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.sun.security.auth.module.UnixSystem;
import io.criu4j.TransportException;
import io.criu4j.spi.Connection;
import io.criu4j.spi.Listener;
import io.criu4j.testing.transport.Streams;
import java.io.IOException;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The Unix transport talks only to allowed users: by default root and its own uid. Tests that
 * need a peer of another user run one with {@code setpriv} as uid 65534 and need root.
 */
@Timeout(value = 30, unit = SECONDS)
class UnixPeerCheckTest {
  private static final int STRANGER = 65534;
  private static final Duration PATIENCE = Duration.ofSeconds(10);
  private static final Duration NOT_ACCEPTED = Duration.ofMillis(1000);
  /** Connects, sends a greeting, and prints what one read returned. */
  // SIGPIPE ignored: the listener may close the refused peer before it writes its greeting.
  private static final String PEER_SCRIPT = "use IO::Socket::UNIX; $SIG{PIPE} = 'IGNORE';"
      + "my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $ARGV[0])"
      + " or die \"connect: $!\\n\";"
      + "unless (print $s \"hello\" and $s->flush) { print \"error $!\\n\"; exit 0; }"
      + "my $n = sysread($s, my $b, 64);"
      + "print defined $n ? ($n == 0 ? \"eof\\n\" : \"read $b\\n\") : \"error $!\\n\";";

  private final Deque<AutoCloseable> resources = new ArrayDeque<>();
  private Path directory;

  @BeforeEach
  void makeDirectoryEveryoneCanReach() throws IOException {
    directory = Files.createTempDirectory("criu4j-peer-check");
    Files.setPosixFilePermissions(directory, PosixFilePermissions.fromString("rwxr-xr-x"));
  }

  @AfterEach
  void closeEverything() throws Exception {
    while (!resources.isEmpty()) {
      resources.pop().close();
    }
    try (var files = Files.list(directory)) {
      for (Path file : (Iterable<Path>) files::iterator) {
        Files.deleteIfExists(file);
      }
    }
    Files.deleteIfExists(directory);
  }

  private <T extends AutoCloseable> T track(T resource) {
    resources.push(resource);
    return resource;
  }

  private Listener listen(UnixTransport transport) throws IOException {
    Path socket = directory.resolve("agent.sock");
    Listener listener = track(transport.listen(UnixTransport.uriOf(socket)));
    // Connecting needs write permission on the socket file; the uid check is what we test.
    Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rwxrwxrwx"));
    return listener;
  }

  @Test
  void byDefaultRootAndTheOwnUidAreAllowed() {
    long own = new UnixSystem().getUid();

    assertThat(UnixTransport.create().allowedPeerUids()).hasValueSatisfying(
        uids -> assertThat(uids).containsOnly(0, (int) own));
    assertThat(UnixTransport.create().toString()).contains("allowedPeerUids=");
    assertThat(UnixTransport.builder().allowAnyPeer().build().allowedPeerUids()).isEmpty();
  }

  @Test
  void aPeerOfTheSameUserIsAcceptedWithItsCredentials() throws Exception {
    Listener listener = listen(UnixTransport.create());

    Connection client = track(UnixTransport.create().connect(listener.address(), PATIENCE));
    Connection server = track(listener.accept(PATIENCE));

    assertThat(server.peer().credentials()).hasValueSatisfying(
        c -> assertThat((long) c.uid()).isEqualTo(new UnixSystem().getUid()));
    Streams.writeUtf8(client, "same user");
    client.shutdownOutput();
    assertThat(Streams.readUtf8ToEnd(server)).isEqualTo("same user");
  }

  @Test
  void aPeerOfAnotherUserIsClosedUnreadAndTheListenerKeepsAccepting() throws Exception {
    assumeRoot();
    Listener listener = listen(UnixTransport.create());

    Process stranger = startAsStranger(listener.address());

    // The listener checks the stranger's uid while accepting, closes it, and waits on.
    assertThatThrownBy(() -> listener.accept(NOT_ACCEPTED))
        .isInstanceOfSatisfying(TransportException.class,
            e -> assertThat(e.errnoName()).isEqualTo("ETIMEDOUT"));
    assertThat(outputOf(stranger)).as("what the refused peer saw")
        .isIn("eof", "error Connection reset by peer", "error Broken pipe");
    Connection own = track(UnixTransport.create().connect(listener.address(), PATIENCE));
    Connection accepted = track(listener.accept(PATIENCE));
    Streams.writeUtf8(own, "still accepting");
    own.shutdownOutput();
    assertThat(Streams.readUtf8ToEnd(accepted)).isEqualTo("still accepting");
  }

  @Test
  void anAllowedUidIsLetThroughAndOthersAreNot() throws Exception {
    assumeRoot();
    Listener listener = listen(UnixTransport.builder().allowedPeerUids(STRANGER).build());

    Process peer = startAsStranger(listener.address());
    Connection accepted = track(listener.accept(PATIENCE));
    assertThat(accepted.peer().credentials()).hasValueSatisfying(
        c -> assertThat(c.uid()).isEqualTo(STRANGER));
    ByteBuffer greeting = ByteBuffer.allocate(5);
    Streams.readFully(accepted, greeting);
    assertThat(new String(greeting.array(), StandardCharsets.US_ASCII)).isEqualTo("hello");
    Streams.writeUtf8(accepted, "welcome");
    assertThat(outputOf(peer)).isEqualTo("read welcome");

    // Root is no longer on the list: its connection is closed unread.
    Connection root = track(UnixTransport.create().connect(listener.address(), PATIENCE));
    assertThatThrownBy(() -> listener.accept(NOT_ACCEPTED))
        .isInstanceOf(TransportException.class);
    ByteBuffer one = ByteBuffer.allocate(1);
    assertThat(readOrFail(root, one)).isIn(-1, -2);
  }

  @Test
  void connectRefusesAListenerOfAUserNotAllowed() throws Exception {
    Listener listener = listen(UnixTransport.create());
    int own = (int) new UnixSystem().getUid();
    int somebodyElse = own == STRANGER ? STRANGER - 1 : STRANGER;
    UnixTransport picky = UnixTransport.builder().allowedPeerUids(somebodyElse).build();

    assertThatThrownBy(() -> track(picky.connect(listener.address(), PATIENCE)))
        .isInstanceOfSatisfying(TransportException.class,
            e -> assertThat(e.errno()).isEqualTo(13))
        .hasMessageContaining(listener.address().toString())
        .hasMessageContaining("listener uid " + own);
  }

  @Test
  void theBuilderRejectsEmptyAndNegativeUidLists() {
    assertThatThrownBy(() -> UnixTransport.builder().allowedPeerUids())
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("allowAnyPeer");
    assertThatThrownBy(() -> UnixTransport.builder().allowedPeerUids(0, -5))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("-5");
  }

  private static int readOrFail(Connection connection, ByteBuffer buffer) {
    try {
      return connection.read(buffer);
    } catch (TransportException e) {
      return -2;
    }
  }

  private static void assumeRoot() {
    assumeTrue(new UnixSystem().getUid() == 0,
        "running a peer as another user (setpriv --reuid) needs root");
    assumeTrue(Files.isExecutable(Path.of("/usr/bin/setpriv"))
        && Files.isExecutable(Path.of("/usr/bin/perl")), "needs setpriv and perl");
  }

  /** Starts the peer script as uid/gid 65534; it is killed after the test. */
  private Process startAsStranger(URI address) throws IOException {
    List<String> command = List.of("/usr/bin/setpriv", "--reuid=" + STRANGER,
        "--regid=" + STRANGER, "--clear-groups", "/usr/bin/perl", "-e", PEER_SCRIPT,
        address.getPath());
    Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
    track(process::destroyForcibly);
    return process;
  }

  /** Waits for the peer script and returns the line it printed. */
  private static String outputOf(Process process) throws Exception {
    if (!process.waitFor(PATIENCE.toSeconds(), TimeUnit.SECONDS)) {
      throw new AssertionError("the peer process did not finish: " + process.info());
    }
    return new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
  }
}
