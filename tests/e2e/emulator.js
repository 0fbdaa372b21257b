// Starts the Telegram Bot API emulator (npm telegram-test-api 4.2.1) for gridbot's end-to-end tests.
//   node tests/e2e/emulator.js [port]     (default 9000; prints one "listening" line when ready)
// tests/telegram_emulator.py starts it, and puts a small correcting proxy between it and the bot.
// The package exports the TelegramServer class itself.
const TelegramServer = require('telegram-test-api');

const port = Number(process.argv[2] || process.env.TELEGRAM_EMULATOR_PORT || 9000);
const server = new TelegramServer({ port, host: '127.0.0.1', storeTimeout: 60 });

// A failed webhook push rejects a promise nobody awaits; do not let it end the process.
process.on('unhandledRejection', (error) => console.error(`emulator: ${error}`));

async function main() {
  await server.start();
  console.log(`telegram-test-api listening on http://127.0.0.1:${port}`);
}

async function stop() {
  await server.stop();
  process.exit(0);
}

process.on('SIGTERM', stop);
process.on('SIGINT', stop);
main().catch((error) => {
  console.error(error);
  process.exit(1);
});
