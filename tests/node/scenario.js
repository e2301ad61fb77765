// A fleet's life through the official twilio Node.js SDK, pointed at simplane by a RequestClient
// that rewrites Twilio's hosts (the README's snippet). Prints what it saw as one JSON object.
// Usage: SIMPLANE_URL=... TWILIO_ACCOUNT_SID=... TWILIO_AUTH_TOKEN=... node scenario.js
"use strict";
const twilio = require("twilio");

class SimplaneRequestClient extends twilio.RequestClient {
  constructor(baseUrl) {
    super();
    this.baseUrl = baseUrl.replace(/\/$/, "");
  }

  request(opts) {
    const url = new URL(opts.uri);
    if (url.hostname.endsWith(".twilio.com")) {  // wireless.twilio.com, wireless.dublin.ie1.twilio.com
      opts = { ...opts, uri: `${this.baseUrl}/${url.hostname.split(".")[0]}${url.pathname}${url.search}` };
    }
    return super.request(opts);
  }
}

async function failure(call) {
  try {
    await call();
  } catch (err) {
    if (!(err instanceof twilio.RestException)) throw err;
    return { status: err.status, code: err.code, message: err.message, moreInfo: err.moreInfo };
  }
  throw new Error("expected the call to fail");
}

async function main() {
  const { SIMPLANE_URL, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN } = process.env;
  const client = twilio(TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, {
    httpClient: new SimplaneRequestClient(SIMPLANE_URL),
  });
  const seen = {};

  // Programmable Wireless: a rate plan, SIMs paged one at a time, activation, a command.
  const plan = await client.wireless.v1.ratePlans.create({ uniqueName: "fleet", dataLimit: 500 });
  const sims = await client.wireless.v1.sims.list({ status: "new", pageSize: 1 });
  seen.simSids = sims.map((s) => s.sid);
  const first = await client.wireless.v1.sims(sims[0].sid).update({
    ratePlan: plan.sid, status: "active", uniqueName: "tracker-1" });
  seen.activated = { status: first.status, ratePlanSid: first.ratePlanSid, uniqueName: first.uniqueName };
  const command = await client.wireless.v1.commands.create({ sim: "tracker-1", command: "wake up" });
  seen.command = (await client.wireless.v1.commands(command.sid).fetch()).status;
  const pages = [];
  let page = await client.wireless.v1.sims.page({ pageSize: 2 });
  while (page) {
    pages.push(page.instances.length);
    page = await page.nextPage();
  }
  seen.pages = pages;

  // Super SIM: a Network Access Profile, a Fleet on it, Fleets listed.
  const nap = await client.supersim.v1.networkAccessProfiles.create({ uniqueName: "roam" });
  const fleet = await client.supersim.v1.fleets.create({
    networkAccessProfile: nap.sid, uniqueName: "trackers", dataLimit: 100 });
  seen.fleet = { nap: fleet.networkAccessProfileSid === nap.sid, dataLimit: fleet.dataLimit };
  seen.fleets = (await client.supersim.v1.fleets.list()).map((f) => f.uniqueName);

  // Event Streams: the event types (paged), a webhook sink.
  seen.eventTypes = (await client.events.v1.eventTypes.list({ pageSize: 3 })).map((t) => t.type);
  const sink = await client.events.v1.sinks.create({
    description: "fleet events", sinkType: "webhook",
    sinkConfiguration: { destination: "http://127.0.0.1:9/events", method: "POST" } });
  seen.sink = { status: (await client.events.v1.sinks(sink.sid).fetch()).status, sid: sink.sid };

  // Proxy: a service with a number pool, a session of two participants, a message relayed.
  const service = await client.proxy.v1.services.create({ uniqueName: "rides" });
  await client.proxy.v1.services(service.sid).phoneNumbers.create({ phoneNumber: "+14155550100" });
  await client.proxy.v1.services(service.sid).phoneNumbers.create({ phoneNumber: "+14155550101" });
  const session = await client.proxy.v1.services(service.sid).sessions.create({
    uniqueName: "ride-1", ttl: 600 });
  const ctx = client.proxy.v1.services(service.sid).sessions(session.sid);
  const rider = await ctx.participants.create({ identifier: "+14155550111" });
  const driver = await ctx.participants.create({ identifier: "+14155550122" });
  const interaction = await ctx.participants(rider.sid).messageInteractions.create({ body: "on my way" });
  seen.proxy = {
    session: (await ctx.fetch()).uniqueName,
    participants: (await ctx.participants.list()).map((p) => p.identifier).sort(),
    proxyNumbers: [rider.proxyIdentifier, driver.proxyIdentifier].filter(Boolean).length,
    interaction: interaction.sid.slice(0, 2),
  };

  // Errors: Twilio's shape, as the SDK reads it.
  seen.notFound = await failure(() => client.wireless.v1.sims("DE" + "0".repeat(32)).fetch());
  seen.badParameter = await failure(() => client.wireless.v1.ratePlans.create({ dataLimit: -5 }));
  seen.duplicate = await failure(() => client.proxy.v1.services.create({ uniqueName: "rides" }));

  process.stdout.write(JSON.stringify(seen) + "\n");
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
