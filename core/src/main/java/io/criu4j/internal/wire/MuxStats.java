package io.criu4j.internal.wire;

/**
 * Counters of one {@link MuxConnection}, per direction: frames, bytes on the wire (headers
 * included) and DATA payload bytes. A snapshot; each field is read atomically, the set is not.
 */
public record MuxStats(
    long framesSent,
    long bytesSent,
    long dataBytesSent,
    long framesReceived,
    long bytesReceived,
    long dataBytesReceived) {}
