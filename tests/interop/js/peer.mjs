// A js-libp2p GossipSub peer driven by tests/interop over stdin/stdout, one JSON object a line.
//
// It speaks what seedswarm's py-libp2p hosts speak (TCP, Noise, Yamux, identify, GossipSub
// v1.1) and ids a gossip message the way every seedswarm node does: the SHA-256 of its data
// (adapters/transport/libp2p_host.gossip_message_id). js-libp2p's default id is key + seqno.
//
// Out: {"event":"ready","peer_id","addrs"} once listening; {"event":"message","topic","from",
// "msg_id","sha256","size"} per message delivered; {"event":"reply","id",...} per command.
// In: {"id","cmd":"dial","addr"} | {"id","cmd":"subscribe","topic"} |
// {"id","cmd":"publish","topic","data_hex"} (signed by this peer, as GossipSub publishes;
// refused as a duplicate if this peer has seen a message of that id) |
// {"id","cmd":"republish","topic","msg_id"} (publish a received message's data again) |
// {"id","cmd":"resend","topic","msg_id","peer"} (the data of a message received, in a fresh
// message signed by this peer with a new seqno, written on a raw GossipSub stream to one peer,
// past this peer's own duplicate check) | {"id","cmd":"publish_unsigned","topic","data_hex",
// "peer"} (no `from`, seqno, signature or key, on a raw stream) | {"id","cmd":"state","topic"}
// | {"id","cmd":"stop"}.

import { createHash, randomBytes } from 'node:crypto'
import { createInterface } from 'node:readline'

// Node 20 lacks Promise.withResolvers, which libp2p 2.x calls (Node 22 has it).
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve
    let reject
    const promise = new this((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}

const { createLibp2p } = await import('libp2p')
const { tcp } = await import('@libp2p/tcp')
const { noise } = await import('@chainsafe/libp2p-noise')
const { yamux } = await import('@chainsafe/libp2p-yamux')
const { identify } = await import('@libp2p/identify')
const { gossipsub } = await import('@chainsafe/libp2p-gossipsub')
const { RPC } = await import('@chainsafe/libp2p-gossipsub/message')
const { multiaddr } = await import('@multiformats/multiaddr')
const { generateKeyPair, publicKeyToProtobuf } = await import('@libp2p/crypto/keys')

const GOSSIPSUB_V11 = '/meshsub/1.1.0'
const SIGNING_PREFIX = new TextEncoder().encode('libp2p-pubsub:')
const MAX_DATA_BYTES = 8 * 1024 * 1024

const sha256 = (bytes) => createHash('sha256').update(bytes).digest()
const hex = (bytes) => Buffer.from(bytes).toString('hex')
const out = (object) => process.stdout.write(JSON.stringify(object) + '\n')

const privateKey = await generateKeyPair('Ed25519')
const node = await createLibp2p({
  privateKey,
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    pubsub: gossipsub({
      // the same content-addressed id as every seedswarm node
      msgIdFn: (message) => new Uint8Array(sha256(message.data)),
      msgIdToStrFn: (id) => hex(id),
      globalSignaturePolicy: 'StrictSign',
      allowPublishToZeroTopicPeers: true,
      emitSelf: false,
      fallbackToFloodsub: false,
      maxInboundDataLength: MAX_DATA_BYTES,
      heartbeatInterval: 700
    })
  }
})
const pubsub = node.services.pubsub
const received = new Map() // msg id (hex) -> data

pubsub.addEventListener('gossipsub:message', (event) => {
  const { msgId, msg } = event.detail
  received.set(msgId, msg.data)
  out({
    event: 'message',
    topic: msg.topic,
    from: msg.type === 'signed' ? msg.from.toString() : '',
    msg_id: msgId,
    sha256: hex(sha256(msg.data)),
    size: msg.data.length
  })
})

function varint (value) {
  const bytes = []
  while (value >= 0x80) { bytes.push((value & 0x7f) | 0x80); value = Math.floor(value / 128) }
  bytes.push(value)
  return Uint8Array.from(bytes)
}

async function sendRaw (peer, message) {
  const connection = node.getConnections().find((c) => c.remotePeer.toString() === peer)
  if (connection === undefined) throw new Error(`not connected to ${peer}`)
  const stream = await connection.newStream(GOSSIPSUB_V11)
  const rpc = RPC.encode({ subscriptions: [], messages: [message] })
  await stream.sink([varint(rpc.length), rpc])
  await new Promise((resolve) => setTimeout(resolve, 200)) // let the peer read before EOF
  await stream.close()
}

// What GossipSub's StrictSign publishing does, by hand: sign the message without its signature
// and key fields, behind the libp2p-pubsub: prefix.
async function signedMessage (topic, data) {
  const fields = { from: node.peerId.toMultihash().bytes, data, seqno: randomBytes(8), topic }
  const unsigned = RPC.Message.encode(fields)
  const signature = await privateKey.sign(Buffer.concat([SIGNING_PREFIX, unsigned]))
  return { ...fields, signature, key: publicKeyToProtobuf(privateKey.publicKey) }
}

async function handle (command) {
  switch (command.cmd) {
    case 'dial':
      await node.dial(multiaddr(command.addr))
      return {}
    case 'subscribe':
      pubsub.subscribe(command.topic)
      return {}
    case 'publish': {
      const data = Uint8Array.from(Buffer.from(command.data_hex, 'hex'))
      const result = await pubsub.publish(command.topic, data)
      return { msg_id: hex(sha256(data)), recipients: result.recipients.map(String) }
    }
    case 'republish': {
      const data = received.get(command.msg_id)
      if (data === undefined) throw new Error(`no message ${command.msg_id} was received`)
      await pubsub.publish(command.topic, data)
      return {}
    }
    case 'resend': {
      const data = received.get(command.msg_id)
      if (data === undefined) throw new Error(`no message ${command.msg_id} was received`)
      await sendRaw(command.peer, await signedMessage(command.topic, data))
      return {}
    }
    case 'publish_unsigned':
      await sendRaw(command.peer, {
        topic: command.topic, data: Uint8Array.from(Buffer.from(command.data_hex, 'hex'))
      })
      return {}
    case 'state':
      return {
        connections: node.getConnections().map((c) => c.remotePeer.toString()),
        subscribers: pubsub.getSubscribers(command.topic).map(String),
        mesh: pubsub.getMeshPeers(command.topic)
      }
    case 'stop':
      await node.stop()
      out({ event: 'reply', id: command.id, ok: true })
      process.exit(0)
      break
    default:
      throw new Error(`unknown command ${command.cmd}`)
  }
}

out({
  event: 'ready',
  peer_id: node.peerId.toString(),
  addrs: node.getMultiaddrs().map(String)
})

const lines = createInterface({ input: process.stdin })
lines.on('line', (line) => {
  let command
  try {
    command = JSON.parse(line)
  } catch (error) {
    out({ event: 'reply', id: null, ok: false, error: `not JSON: ${error.message}` })
    return
  }
  handle(command).then(
    (result) => out({ event: 'reply', id: command.id, ok: true, ...result }),
    (error) => out({ event: 'reply', id: command.id, ok: false, error: String(error) })
  )
})
lines.on('close', () => { node.stop().finally(() => process.exit(0)) })
