// Compiled (never run) by tests/clients/test_js_generated.py: the declarations type-check, and calls that
// contradict /openapi.json do not.
import { RoomlogClient, type Message, type Room } from "../roomlog.js";

async function usage(client: RoomlogClient): Promise<void> {
  const room: Room = await client.api.getRoomsRoomId({ room_id: "r" });
  const messages: Message[] = await client.api.getRoomsRoomIdMessages({ room_id: room.room_id, before_seq: 10, limit: 5 });
  const content: string = messages[0].content;
  await client.api.postRooms({ body: { type: "group", members: ["bob"], name: content } });
  const sent = await client.send(room.room_id, "hi", { threadId: messages[0].message_id });
  const seq: number = sent.seq;
  const live = client.subscribe({ [room.room_id]: seq });
  live.on("event", (event) => event.seq + 1);
  // @ts-expect-error: a path parameter is required
  await client.api.getRoomsRoomId({});
  // @ts-expect-error: a room's type is one of dm, group, channel
  await client.api.postRooms({ body: { type: "party", members: [] } });
}

void usage;
