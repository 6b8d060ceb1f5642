package io.criu4j.internal.wire;

/**
 * What {@link MuxConnection#accept()} hands the application: a file the peer opened, a tunnel
 * the peer opened, or the end of an image.
 */
public sealed interface Inbound permits InboundFile, Tunnel, ImageEnd {}
