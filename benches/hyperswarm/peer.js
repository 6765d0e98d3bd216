// The hyperswarm side (its stream over hyperdht) of the path lab's bench rows (`cargo bench --bench
// bench -- paths`): the reference tinynode's throughput is compared with,
// run in the same namespaces through the same delay line. Not shipped; the
// bench installs hyperswarm with npm into target/hyperswarm-bench.
//
//   node peer.js bootstrap HOST PORT           a hyperdht testnet of five nodes, the first on HOST:PORT
//   node peer.js receive BOOTSTRAP TOPIC BYTES  listen on the key pair TOPIC seeds, count BYTES, print "done"
//   node peer.js send BOOTSTRAP TOPIC LINES LEN connect to that key, write LINES lines of LEN bytes
//
// Each prints one JSON line per event on stdout: ready, start, done.
'use strict'
const DHT = require('hyperdht')
const crypto = require('crypto')

const say = (event, extra) => console.log(JSON.stringify({ event, ...extra }))
const [mode, ...args] = process.argv.slice(2)

function bootstrapOf (text) {
  const [host, port] = text.split(':')
  return [{ host, port: Number(port) }]
}

function topicOf (text) {
  return crypto.createHash('sha256').update(text).digest()
}

async function main () {
  if (mode === 'bootstrap') {
    // A small testnet (hyperdht's own helper): five DHT nodes, the first
    // on HOST:PORT.
    const [host, port] = args
    const createTestnet = require('hyperdht/testnet')
    await createTestnet(5, { host, port: Number(port) })
    say('ready')
    return
  }
  const [bootstrap, topic, count, len] = args
  const dht = new DHT({ bootstrap: bootstrapOf(bootstrap) })
  const keyPair = DHT.keyPair(topicOf(topic))
  if (mode === 'receive') {
    const want = Number(count)
    const server = dht.createServer((socket) => {
      let got = 0
      socket.on('data', (data) => {
        got += data.length
        if (got >= want) {
          say('done', { bytes: got })
          process.exit(0)
        }
      })
      socket.on('error', () => {})
    })
    await server.listen(keyPair)
    say('ready')
  } else if (mode === 'send') {
    const lines = Number(count)
    const line = Buffer.alloc(Number(len), 'y')
    line[line.length - 1] = 10
    const socket = dht.connect(keyPair.publicKey)
    socket.on('error', (error) => {
      console.error(error)
      process.exit(1)
    })
    socket.once('open', async () => {
      say('start')
      for (let i = 0; i < lines; i++) {
        if (!socket.write(line)) {
          await new Promise((resolve) => socket.once('drain', resolve))
        }
      }
    })
    say('ready')
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
