package io.criu4j;

/**
 * What CRIU's FEATURE_CHECK found on this host.
 *
 * @param memTrack dirty-page tracking (soft-dirty), needed for pre-copy iterations
 * @param lazyPages userfaultfd with non-cooperative events, needed for post-copy
 * @param pidfdStore pidfd_open and pidfd_getfd, used to detect pid reuse between iterations
 * @since 0.1
 */
public record CriuFeatures(boolean memTrack, boolean lazyPages, boolean pidfdStore) {}
