"""The edge agent: pollers, schedule and control, telemetry, commands, and the MQTT link, as one
asyncio TaskGroup. `async with Agent(settings) as agent:` starts it; leaving the block publishes
the offline state, cancels every task and awaits them.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from edge_agent import metrics
from edge_agent.cancellation import cancel_and_wait, raise_if_cancelled
from edge_agent.clock import Clock, RealClock, ScaledClock, to_us, utc_now
from edge_agent.commands import Decision, Override, Verdict, decide, override_of, prune
from edge_agent.levels import matches, target_levels
from edge_agent.link import Link
from edge_agent.poller import DaliPoller, ModbusPoller
from edge_agent.presence_boost import Boost, boost_on_presence
from edge_agent.sensors import ModbusSensorSource, SensorPoller, SensorSource, with_sensors
from edge_agent.settings import AgentSettings, DaliBusSpec, ModbusSpec, SensorSpec
from edge_agent.state import AgentState
from edge_agent.store_forward import Outbox
from edge_agent.telemetry import SeqCounter, luminaire_records, meter_records, payloads
from hardware.dali import (
    DaliBus,
    DaliError,
    DaliNotImplemented,
    DaliServerBus,
    open_hid,
    open_serial,
)
from hardware.modbus import Backoff, ModbusDevice, RetryPolicy, load_profile, rtu_client, tcp_client
from wire.messages import (
    Ack,
    AckStatus,
    Calendar,
    CalendarCommand,
    ConfigCommand,
    ControllerConfig,
    Event,
    EventKind,
    GroupTarget,
    Identify,
    MessageError,
    OfflineReason,
    ReadDiagnostics,
    Reboot,
    Schedule,
    ScheduleCommand,
    SetLevel,
    Severity,
    State,
    command_id_of,
    dumps,
    loads,
    parse_command,
)
from wire.nights import FALLBACK, Plan, Position, level_at, presence_at
from wire.topics import Kind, TopicError, parse_topic

log = logging.getLogger(__name__)

_MODBUS_RETRY = RetryPolicy(attempts=2, backoff=Backoff(initial_s=0.05, max_s=5.0))
"""A poll is repeated on its own schedule: one retry inside a poll is enough."""

REASSERT_S = 60.0  # levels are re-sent this often even when unchanged (a gear may have reset)
IDENTIFY_TICK_S = 0.25
# wire has no event kind for a diagnostics report yet; see the report to the wire owners
DIAGNOSTICS_KIND = EventKind.DIAGNOSTICS


@dataclass
class Hardware:
    """Opened adapters: DALI buses (bus i -> luminaires i*64..), Modbus meters, and sensors
    (sensor i watches the luminaires of settings.sensors[i], all of them when there is none)."""

    buses: list[DaliBus]
    meters: list[ModbusDevice]
    sensors: list[SensorSource] = field(default_factory=list)


async def open_bus(spec: DaliBusSpec) -> DaliBus:
    if spec.kind == "daliserver":
        return DaliServerBus(spec.host, spec.port, timeout_s=spec.timeout_s)
    if spec.kind == "hid":
        return await open_hid(spec.path or "", spec.driver)
    return await open_serial(spec.uri or "")


def open_meter(spec: ModbusSpec) -> ModbusDevice:
    client = (tcp_client(spec.host, spec.port, timeout_s=spec.timeout_s) if spec.host
              else rtu_client(spec.serial_port or "", baudrate=spec.baudrate, timeout_s=spec.timeout_s))
    return ModbusDevice(load_profile(spec.profile), client, device_id=spec.device_id,
                        timeout_s=spec.timeout_s, retry=_MODBUS_RETRY)


def open_sensor(spec: SensorSpec) -> SensorSource:
    client = (tcp_client(spec.host, spec.port, timeout_s=spec.timeout_s) if spec.host
              else rtu_client(spec.serial_port or "", baudrate=spec.baudrate, timeout_s=spec.timeout_s))
    device = ModbusDevice(load_profile(spec.profile), client, device_id=spec.device_id,
                          timeout_s=spec.timeout_s, retry=_MODBUS_RETRY)
    return ModbusSensorSource(device, spec.presence_register, spec.lux_register)


def make_clock(settings: AgentSettings) -> Clock:
    if settings.clock_factor == 1.0 and settings.clock_start is None:
        return RealClock()
    return ScaledClock(settings.clock_factor, settings.clock_start)


class Agent:
    """One controller's agent. Hardware may be given (tests, many agents in one process);
    otherwise it is opened from the settings."""

    def __init__(self, settings: AgentSettings, *, clock: Clock | None = None,
                 hardware: Hardware | None = None) -> None:
        self.settings = settings
        self.clock = clock or make_clock(settings)
        self.controller = settings.controller_id
        data = settings.data_dir
        self.state = AgentState(data / "state.sqlite")
        self.boot_id = self.state.new_boot(self.clock.time())
        self.config = self._load_config()
        self.schedule = self._load_schedule()
        self.position = Position(settings.position.lat, settings.position.lon)
        self.outbox = Outbox(data / "outbox.sqlite", self.config.buffer_max_bytes,
                             self.config.buffer_max_age_s, clock=self.clock.time)
        self.seq = {"luminaire": SeqCounter(), "sensor": SeqCounter(), "message": SeqCounter()}
        self.link = Link(settings, self.outbox, self.clock, self._state_payload, self._received,
                         ready=self._discovery_tried)
        self._announced: int | None = None  # luminaires the last birth message / will counted
        self.link.keepalive_s = self.config.mqtt_keepalive_s
        self._hardware = hardware
        self.dali: list[DaliPoller] = []
        self.meters: list[ModbusPoller] = []
        self.sensors: list[SensorPoller] = []
        self.overrides: tuple[Override, ...] = ()
        self.boost: Boost | None = None  # presence boost of every luminaire
        self.boosts: dict[int, Boost] = {}  # presence boosts of single luminaires
        self.exit_reason = OfflineReason.SHUTDOWN
        self._inbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize=1000)
        self._control_wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._started = asyncio.Event()
        self._dropped_reported = self.outbox.stats().dropped_total
        self._meter_sent: dict[int, int] = {}

    # ----------------------------------------------------------------- persisted documents
    def _load_config(self) -> ControllerConfig:
        saved = self.state.document("config")
        return loads(ControllerConfig, saved) if saved else self.settings.config

    def _load_schedule(self) -> Plan:
        """The calendar last applied, else the schedule last applied (an agent updated from a
        release before calendars), else the settings' schedule, else full dusk to dawn."""
        for name, model in (("calendar", Calendar), ("schedule", Schedule)):
            saved = self.state.document(name)
            if saved:
                try:
                    plan: Plan = loads(model, saved)
                    return plan
                except MessageError:
                    log.warning("stored %s invalid controller=%s; using fallback", name,
                                self.controller)
                    return FALLBACK
        return self.settings.schedule or FALLBACK

    # ----------------------------------------------------------------- lifecycle
    async def __aenter__(self) -> Agent:
        self._task = asyncio.create_task(self.run(), name=f"agent-{self.controller}")
        await self._started.wait()
        return self

    async def __aexit__(self, *exc) -> None:
        self.stop()
        assert self._task is not None
        await self._task

    def stop(self, reason: OfflineReason = OfflineReason.SHUTDOWN) -> None:
        self.exit_reason = reason
        self._stop.set()

    async def run(self) -> OfflineReason:
        """Run until stop(); returns why it stopped (shutdown or reboot)."""
        hardware = self._hardware or Hardware(
            [await open_bus(s) for s in self.settings.dali],
            [open_meter(s) for s in self.settings.modbus],
            [open_sensor(s) for s in self.settings.sensors])
        cfg = self.config
        self.dali = [DaliPoller(bus, i, self.clock, self.emit, cfg.dali_poll_interval_s,
                                rediscover_s=self.settings.dali_rediscover_s,
                                on_inventory=self._inventory_changed)
                     for i, bus in enumerate(hardware.buses)]
        self.meters = [ModbusPoller(dev, i, self.clock, self.emit, cfg.meter_poll_interval_s)
                       for i, dev in enumerate(hardware.meters)]
        self.sensors = [SensorPoller(src, i, self.clock, self.emit, self.presence,
                                     self._sensor_interval(i), self._sensor_covers(i))
                        for i, src in enumerate(hardware.sensors)]
        self.emit(EventKind.BOOT, Severity.INFO, None, firmware=self.settings.firmware,
                  buses=len(self.dali), meters=len(self.meters), sensors=len(self.sensors))
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(self.link.run(), name="link")]
                tasks += [tg.create_task(p.run(), name=f"dali-{p.bus_index}") for p in self.dali]
                tasks += [tg.create_task(p.run(), name=f"modbus-{p.index}") for p in self.meters]
                tasks += [tg.create_task(p.run(), name=f"sensor-{p.index}") for p in self.sensors]
                tasks.append(tg.create_task(self._telemetry_loop(), name="telemetry"))
                tasks.append(tg.create_task(self._control_loop(), name="control"))
                tasks.append(tg.create_task(self._command_loop(), name="commands"))
                self._started.set()
                await self._stop.wait()
                await self.link.goodbye(str(self.exit_reason))
                await cancel_and_wait(tasks)
        finally:
            self._started.set()
            if self._hardware is None:
                for bus in hardware.buses:
                    await bus.close()
                for meter in hardware.meters:
                    meter.close()
                for source in hardware.sensors:
                    source.close()
            self.outbox.close()
            self.state.close()
        return self.exit_reason

    # ----------------------------------------------------------------- outgoing messages
    def luminaire_count(self) -> int:
        """Gear found on the DALI buses (one that fell silent since still counts: it is there)."""
        return sum(len(p.addresses) for p in self.dali)

    def _state_payload(self, online: bool, reason: str | None) -> bytes:
        self._announced = self.luminaire_count()
        return dumps(State(controller=self.controller, boot_id=self.boot_id,
                           seq=self.seq["message"].take(), online=online,
                           firmware=self.settings.firmware, time=utc_now(self.clock),
                           luminaires=self._announced,
                           reason=None if online or reason is None else OfflineReason(reason)))

    async def _discovery_tried(self) -> None:
        """Until every DALI bus has tried its first discovery (found its gear or failed)."""
        for poller in self.dali:
            await poller.attempted.wait()

    def _inventory_changed(self) -> None:
        """A bus found new gear or a gear changed: announce the new count (birth and will)."""
        if self._announced is not None and self._announced != self.luminaire_count():
            self.link.rearm()

    def _put(self, kind: Kind, payload: bytes) -> None:
        dropped = self.outbox.put(self.link.topics[kind], payload, qos=1)
        if dropped:
            log.warning("outbox full controller=%s dropped=%d", self.controller, dropped)
        self.link.wake()

    def emit(self, kind: EventKind, severity: Severity, luminaire: int | None = None,
             **detail) -> None:
        """Record an event in the outbox (sent at once when connected)."""
        if kind in (EventKind.DALI_ERROR, EventKind.MODBUS_ERROR):
            metrics.POLL_ERRORS.labels(self.controller, str(kind)).inc()
        event = Event(controller=self.controller, boot_id=self.boot_id,
                      seq=self.seq["message"].take(), kind=kind, severity=severity,
                      time=utc_now(self.clock), luminaire=luminaire,
                      detail={k: v for k, v in detail.items() if v is not None})
        self._put(Kind.EVENT, dumps(event))

    def _ack(self, command_id: str, status: AckStatus, reason: str | None = None) -> None:
        self.state.answered(command_id, status, reason, self.clock.time())
        ack = Ack(controller=self.controller, boot_id=self.boot_id, seq=self.seq["message"].take(),
                  command_id=command_id, status=status, reason=reason, time=utc_now(self.clock))
        self._put(Kind.ACK, dumps(ack))

    # ----------------------------------------------------------------- telemetry
    async def _telemetry_loop(self) -> None:
        while True:
            await self.clock.sleep(self.config.telemetry_interval_s)
            self.take_telemetry()

    def take_telemetry(self) -> None:
        """One reading of every luminaire and meter, written to the outbox as telemetry."""
        now_us = to_us(self.clock)
        readings = [r for p in self.dali for _, r in sorted(p.latest.items())]
        if self.sensors:
            readings = with_sensors(readings, [(p.covers, p.take()) for p in self.sensors])
        per = self.config.records_per_message
        if readings:
            records = luminaire_records(readings)
            records["time_us"] = now_us
            for _, payload in payloads(records, self.boot_id, self.seq["luminaire"], per):
                self._put(Kind.TELEMETRY, payload)
            metrics.READINGS.labels(self.controller, "luminaire").inc(len(readings))
        for meter in self.meters:
            if meter.latest is None or self._meter_sent.get(meter.index) == meter.latest[0]:
                continue
            at, values = meter.latest
            self._meter_sent[meter.index] = at
            records = meter_records(at, meter.index, values)
            if records.shape[0]:
                for _, payload in payloads(records, self.boot_id, self.seq["sensor"], per):
                    self._put(Kind.TELEMETRY, payload)
                metrics.READINGS.labels(self.controller, "sensor").inc(records.shape[0])
        self._report_drops()

    def _report_drops(self) -> None:
        self.outbox.expire()
        dropped = self.outbox.stats().dropped_total
        if dropped > self._dropped_reported:
            self.emit(EventKind.BUFFER_DROPPED, Severity.WARNING, None,
                      dropped=dropped - self._dropped_reported, dropped_total=dropped)
            self._dropped_reported = self.outbox.stats().dropped_total

    # ----------------------------------------------------------------- schedule and control
    def luminaires(self) -> dict[int, frozenset[int]]:
        return {i: groups for p in self.dali for i, groups in p.groups.items()}

    def _sensor_spec(self, index: int) -> SensorSpec | None:
        specs = self.settings.sensors
        return specs[index] if index < len(specs) else None

    def _sensor_interval(self, index: int) -> float:
        spec = self._sensor_spec(index)
        if spec is not None and spec.poll_interval_s is not None:
            return spec.poll_interval_s
        return self.config.sensor_poll_interval_s

    def _sensor_covers(self, index: int) -> frozenset[int] | None:
        spec = self._sensor_spec(index)
        return None if spec is None or spec.luminaires is None else frozenset(spec.luminaires)

    def presence(self, luminaires: frozenset[int] | None = None) -> None:
        """A presence sensor saw someone: boost the luminaires it watches (None: all of them)
        per the schedule's presence settings; a new detection restarts the hold."""
        metrics.PRESENCE.labels(self.controller).inc()
        boosting = presence_at(self.schedule, self.position, utc_now(self.clock))
        if boosting is None:
            return
        boost = boost_on_presence(boosting, utc_now(self.clock))
        if luminaires is None:
            self.boost = boost
        else:
            self.boosts.update(dict.fromkeys(luminaires, boost))
        self._control_wake.set()

    def targets(self) -> dict[int, int]:
        now = utc_now(self.clock)
        self.overrides = prune(self.overrides, now)
        scheduled = level_at(self.schedule, self.position, now)
        on_hours = {i: h for p in self.dali for i, h in p.on_hours.items()}
        self.boosts = {i: b for i, b in self.boosts.items()
                       if (now - b.hold_until).total_seconds() <= b.fade_s}
        return target_levels(self.luminaires(), scheduled, self.boost, self.overrides, now,
                             clo=self.schedule.clo, on_hours=on_hours, boosts=self.boosts)

    async def _control_loop(self) -> None:
        sent: dict[int, int] = {}
        last_full = float("-inf")
        failing = False
        while True:
            targets = self.targets()
            if self.clock.monotonic() - last_full >= REASSERT_S:
                changed, last_full = targets, self.clock.monotonic()
            else:
                changed = {i: lv for i, lv in targets.items() if sent.get(i) != lv}
            try:
                for poller in self.dali:
                    await poller.drive(changed)
                sent.update(changed)
                failing = False
            except DaliError as exc:  # the bus is down: the pollers report it; retry next tick
                if not failing:
                    log.warning("dali drive failed controller=%s error=%s", self.controller, exc)
                failing, last_full = True, float("-inf")
            raise_if_cancelled()
            blinking = any(o.kind == "identify" for o in self.overrides)
            await self._sleep_or_wake(IDENTIFY_TICK_S if blinking else self.settings.control_tick_s)

    async def _sleep_or_wake(self, seconds: float) -> None:
        self._control_wake.clear()
        waiter = asyncio.ensure_future(self._control_wake.wait())
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        try:
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (waiter, sleeper):
                t.cancel()
            await asyncio.gather(waiter, sleeper, return_exceptions=True)

    # ----------------------------------------------------------------- commands and config
    def _received(self, topic_name: str, payload: bytes) -> None:
        try:
            self._inbox.put_nowait((topic_name, payload))
        except asyncio.QueueFull:
            log.warning("inbox full controller=%s; dropped a message on %s", self.controller, topic_name)

    async def _command_loop(self) -> None:
        while True:
            topic_name, payload = await self._inbox.get()
            try:
                kind = parse_topic(topic_name).kind
            except TopicError:
                continue
            if kind is Kind.CONFIG:
                self._config_message(payload)
            elif kind is Kind.CMD:
                await self.handle_command(payload)
                raise_if_cancelled()

    def _config_message(self, payload: bytes) -> None:
        if not payload:
            return  # a cleared retained config
        try:
            config: ControllerConfig = loads(ControllerConfig, payload)
        except MessageError as exc:
            self.emit(EventKind.CONFIG_APPLIED, Severity.WARNING, None, ok=False, reason=str(exc)[:200])
            return
        if config.id != self.config.id:
            self.apply_config(config)

    def apply_config(self, config: ControllerConfig) -> None:
        self.config = config
        self.state.save_document("config", dumps(config).decode())
        for p in self.dali:
            p.interval_s = config.dali_poll_interval_s
        for m in self.meters:
            m.interval_s = config.meter_poll_interval_s
        for sensor in self.sensors:
            sensor.interval_s = self._sensor_interval(sensor.index)
        self.outbox.max_bytes, self.outbox.max_age_s = config.buffer_max_bytes, config.buffer_max_age_s
        self.emit(EventKind.CONFIG_APPLIED, Severity.INFO, None, ok=True, config_id=config.id)

    async def handle_command(self, payload: bytes) -> None:
        try:
            command = parse_command(payload)
        except MessageError as exc:
            command_id = command_id_of(payload)
            if command_id is not None and self.state.seen(command_id) is None:
                self._ack(command_id, AckStatus.REFUSED, f"invalid command: {exc}"[:256])
            log.warning("invalid command controller=%s error=%s", self.controller, exc)
            return
        decision: Decision = decide(command, utc_now(self.clock), self.state.seen(command.id))
        metrics.COMMANDS.labels(self.controller, command.type, str(decision.status)).inc()
        if decision.verdict is not Verdict.ACCEPT:
            self._ack(command.id, decision.status, decision.reason)
            return
        self._ack(command.id, AckStatus.ACCEPTED)
        try:
            reason = await self._execute(command)
        except DaliError as exc:
            reason = f"DALI: {type(exc).__name__}: {exc}"
        status = AckStatus.DONE if reason is None else AckStatus.FAILED
        metrics.COMMANDS.labels(self.controller, command.type, str(status)).inc()
        self._ack(command.id, status, None if reason is None else reason[:256])
        if isinstance(command, Reboot) and status is AckStatus.DONE:
            self.stop(OfflineReason.REBOOT)

    async def _execute(self, command) -> str | None:
        """Carry a command out; None when done, else the reason it failed."""
        now = utc_now(self.clock)
        if isinstance(command, SetLevel | Identify):
            known = self.luminaires()
            if not any(matches(command.target, i, g) for i, g in known.items()) and not (
                    isinstance(command.target, GroupTarget) and known):
                return f"no luminaire of this controller matches target {command.target!r}"
            self.overrides = (*prune(self.overrides, now), override_of(command, now))
            targets = self.targets()
            for poller in self.dali:
                await poller.drive({i: lv for i, lv in targets.items()
                                    if matches(command.target, i, known[i])})
            self._control_wake.set()
            return None
        if isinstance(command, ScheduleCommand):
            if command.target != "all":
                return "a schedule applies to the whole controller; target must be \"all\""
            self.schedule = command.schedule
            self.state.save_document("schedule", command.schedule.model_dump_json())
            self.state.save_document("calendar", "")  # the newest plan wins after a restart
            self.emit(EventKind.SCHEDULE_APPLIED, Severity.INFO, None, steps=len(command.schedule.steps),
                      timezone=command.schedule.timezone, command_id=command.id)
            self._control_wake.set()
            return None
        if isinstance(command, CalendarCommand):
            if command.target != "all":
                return "a calendar applies to the whole controller; target must be \"all\""
            self.schedule = command.calendar
            self.state.save_document("calendar", command.calendar.model_dump_json())
            self.emit(EventKind.SCHEDULE_APPLIED, Severity.INFO, None,
                      programs=len(command.calendar.programs), revision=command.calendar.revision,
                      timezone=command.calendar.timezone, command_id=command.id)
            self._control_wake.set()
            return None
        if isinstance(command, ConfigCommand):
            self.apply_config(command.config)
            return None
        if isinstance(command, ReadDiagnostics):
            return await self._read_diagnostics(command)
        if isinstance(command, Reboot):
            await self.clock.sleep(command.delay_s)
            return None
        return f"unsupported command {command.type}"

    async def _read_diagnostics(self, command: ReadDiagnostics) -> str | None:
        known = self.luminaires()
        wanted = [i for i, g in known.items() if matches(command.target, i, g)]
        if not wanted:
            return f"no luminaire of this controller matches target {command.target!r}"
        failed, lacking = [], []
        for index in wanted:
            poller = next(p for p in self.dali if p.owns(index))
            try:
                diag = await poller.diagnostics(index)
            except DaliNotImplemented:  # a capability of the gear, not a failure to answer
                lacking.append(str(index))
                continue
            except DaliError as exc:
                failed.append(f"{index}: {type(exc).__name__}")
                continue
            detail = {k: v for k, v in diag.model_dump().items() if v is not None}
            self.emit(DIAGNOSTICS_KIND, Severity.INFO, index, report="d4i_diagnostics",
                      command_id=command.id, **dict(list(detail.items())[:30]))
        if failed:
            return "no answer from " + ", ".join(failed)
        if len(lacking) == len(wanted):
            return ("no D4i diagnostics (memory banks 205/206) on luminaire "
                    + ", ".join(lacking))
        return None


