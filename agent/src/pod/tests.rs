//! Pod worker tests on paused time with a scripted runtime.
