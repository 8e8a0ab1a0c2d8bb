// English messages of the supervisor page. Every language has a file like
// this one with the same keys; floor.js takes every text it shows from
// them. "{name}" is filled in by the page; a message given as {one, few,
// many, other} is chosen by the number in {count} (Intl.PluralRules).
'use strict';

(window.screenpopFloorCatalogs = window.screenpopFloorCatalogs || {}).en = {
  _name: 'English',
  _dir: 'ltr',

  'title': 'Floor · screenpop',
  'skip': 'Skip to the floor',
  'heading': 'Call-center floor',
  'brand.floor': 'Floor',
  'who': '{name} · {id}',
  'lang.label': 'Language',
  'lang.auto': 'Browser language',

  'conn.connecting': 'Connecting…',
  'conn.reconnecting': 'Reconnecting…',
  'conn.open': 'Live',
  'conn.offline': 'Offline · retrying',
  'conn.signedOut': 'Not signed in',
  'conn.notSupervisor': 'No access',

  'refused.signIn': 'Sign in',
  'refused.signedOutTitle': 'Sign in to see the floor',
  'refused.signedOutText': 'Open the supervisor link you were given, or sign in with your company account.',
  'refused.notSupervisorTitle': 'This page is for supervisors',
  'refused.notSupervisorText': 'Your account has no supervisor role here. Ask IT to give it to you.',

  'kpi.title': 'Now and today',
  'kpi.waiting': 'Waiting now',
  'kpi.longestWait': 'Longest wait',
  'kpi.onCall': 'On a call',
  'kpi.answered': 'Answered today',
  'kpi.abandoned': 'Abandoned today',
  'kpi.serviceLevel': 'Service level',
  'kpi.serviceLevelHint': 'answered within {s} s',
  'kpi.popped': 'Pop on screen before answer',
  'kpi.poppedHint': { one: '{popped} of {count} answered call', other: '{popped} of {count} answered calls' },
  'kpi.poppedNone': 'no call answered yet',
  'kpi.none': '—',

  'duration.ms': '{m}:{s}',
  'duration.hms': '{h}:{m}:{s}',

  'waiting.title': 'Calls waiting',
  'waiting.empty': 'No call is waiting.',
  'waiting.wait': 'Waiting',
  'waiting.caller': 'Caller',
  'waiting.line': 'Line',
  'waiting.ringingAt': 'Ringing at',
  'waiting.withheld': 'Withheld number',
  'waiting.otherLine': 'Other line',
  'waiting.queued': 'Queued: no phone rings',
  'waiting.transfer': 'Being transferred',
  'waiting.noPage': 'no page open',

  'agent.nameId': '{name} ({id})',
  'agent.id': 'Agent {id}',

  'agents.title': 'Agents',
  'agents.empty': 'No agent is configured or signed in.',
  'agents.name': 'Agent',
  'agents.state': 'State',
  'agents.page': 'Agent page',
  'agents.since': 'For',
  'agents.until': 'until {time}',
  'agents.blind': 'no page open',

  'state.on_call': 'On a call',
  'state.ringing': 'Ringing',
  'state.wrap_up': 'Wrap-up',
  'state.ready': 'Ready',
  'state.offline': 'Not signed in',
  'page.open': 'Open',
  'page.closed': 'Not open',

  'health.title': 'Systems',
  'health.empty': 'Nothing reported yet.',
  'health.kind.source': 'Data sources',
  'health.kind.pbx': 'Phone systems',
  'health.kind.redis': 'Shared Redis',
  'health.kind.history': 'Call history',
  'health.status.ok': 'OK',
  'health.status.recovering': 'Trying again',
  'health.status.degraded': 'Failing',
  'health.status.down': 'Down',
  'health.on': 'as seen by {daemons}',

  'footer.day': 'Today: {day}',
  'footer.daemons': { one: 'from {count} server', other: 'merged from {count} servers' },
  'footer.partial': 'the shared Redis does not answer: this server’s calls and counts only'
};
