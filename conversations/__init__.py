"""Platform-neutral dialogs. Adapters in `bot/` turn platform events into `Inbound`
messages and render the `Reply` objects these dialogs return; nothing here imports an adapter."""
