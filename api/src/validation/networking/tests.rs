//! Networking validation against upstream's messages and field paths.
