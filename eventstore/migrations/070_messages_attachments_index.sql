-- The messages read model no longer carries a GIN index over its attachment documents: the media cleanup and
-- the media read check find a medium's messages in the message_attachments read model instead. Its DDL no
-- longer creates the index; this drops it where an earlier build made it, so the messages table need not be
-- rebuilt from the log for an index alone.
DROP INDEX IF EXISTS public.messages_attachments;
