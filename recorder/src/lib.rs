//! Recorder: a hidden subscriber that writes sessions to disk. Arrives with issue 7.
