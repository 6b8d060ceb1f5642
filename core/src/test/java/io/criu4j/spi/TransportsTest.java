package io.criu4j.spi;

import static java.util.concurrent.TimeUnit.SECONDS;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.URI;
import java.util.Optional;
import java.util.OptionalLong;
import javax.security.auth.x500.X500Principal;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Finding transports by scheme; the identity values the SPI hands out. */
@Timeout(value = 10, unit = SECONDS)
class TransportsTest {

  @Test
  void theInMemoryTransportIsBuiltIn() {
    assertThat(Transports.forUri(URI.create("mem://x")).scheme()).isEqualTo("mem");
    assertThat(Transports.inMemory()).isSameAs(Transports.forScheme("mem"));
  }

  @Test
  void aMissingCriu4jTransportModuleIsNamedInTheError() {
    // core's own tests run without the transport modules on the class path.
    assertThatThrownBy(() -> Transports.forUri(URI.create("tcp://example.org:4000")))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("no transport for scheme 'tcp'")
        .hasMessageContaining("add io.criu4j:criu4j-transport-tcp to the class path")
        .hasMessageContaining("tcp://example.org:4000");
    assertThatThrownBy(() -> Transports.forScheme("unix"))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("add io.criu4j:criu4j-transport-unix to the class path");
  }

  @Test
  void anUnknownSchemeIsAnIllegalArgumentListingTheSchemesThereAre() {
    assertThatThrownBy(() -> Transports.forUri(URI.create("carrier-pigeon://coop")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("'carrier-pigeon'")
        .hasMessageContaining("carrier-pigeon://coop")
        .hasMessageContaining("mem");
  }

  @Test
  void anAddressWithoutSchemeIsAnIllegalArgumentNamingIt() {
    assertThatThrownBy(() -> Transports.forUri(URI.create("localhost/4000")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("localhost/4000");
  }

  @Test
  void aPeerIdentityGrowsByOptionalParts() {
    PeerIdentity plain = PeerIdentity.of("tcp://10.0.0.7:51234");
    PeerIdentity local = PeerIdentity.of("unix:unnamed")
        .withCredentials(new PeerCredentials(1000, 100, OptionalLong.of(42)));
    PeerIdentity authenticated = plain.withPrincipal(new X500Principal("CN=source"));

    assertThat(plain.credentials()).isEmpty();
    assertThat(plain.principal()).isEmpty();
    assertThat(local.credentials()).contains(new PeerCredentials(1000, 100, OptionalLong.of(42)));
    assertThat(local).hasToString("unix:unnamed uid=1000 gid=100 pid=42");
    assertThat(authenticated.principal()).map(p -> p.getName()).contains("CN=source");
    assertThat(authenticated.address()).isEqualTo(plain.address());
  }

  @Test
  void aPeerIdentityNeedsAnAddress() {
    assertThatThrownBy(() -> PeerIdentity.of(" "))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("' '");
    assertThatThrownBy(() -> new PeerIdentity("x", null, Optional.empty()))
        .isInstanceOf(NullPointerException.class);
  }
}
