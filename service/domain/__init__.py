"""The rules of the product as pure functions: state and command in, events (or a RoomlogError) out."""
