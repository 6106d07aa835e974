import {
  askUserMessage,
  gatewayFileContent,
  leadMessage,
  pythonJsonList,
  soulUpdatedNote,
} from './coordination-messages';

const board = { id: '6b0f2c1e-0000-4000-8000-000000000001', name: 'Launch' };
const BASE = 'http://mc.test:8000';

describe('coordination messages (contract §1.4.3, §1.4.4)', () => {
  it('JSON inside the text is json.dumps style', () => {
    expect(pythonJsonList(['gateway_main', 'lead_reply'])).toBe('["gateway_main", "lead_reply"]');
    expect(pythonJsonList([])).toBe('[]');
    expect(pythonJsonList(['a"b'])).toBe('["a\\"b"]');
  });

  it('ask-user: optional lines only when non-blank, defaults for empty tags and source', () => {
    const text = askUserMessage({
      baseUrl: BASE,
      board,
      leadName: 'Lead',
      content: '\n Q? \n',
      correlationId: ' ',
      preferredChannel: null,
      replyTags: [],
      replySource: '',
    });
    expect(text.split('\n')).toEqual([
      'LEAD REQUEST: ASK USER',
      'Board: Launch',
      `Board ID: ${board.id}`,
      'From lead: Lead',
      '',
      'Q?',
      '',
      'Please reach the user via your configured OpenClaw channel(s) (Slack/SMS/etc).',
      'If you cannot reach them there, post the question in Mission Control board chat as a fallback.',
      '',
      'When you receive the answer, reply in Mission Control by writing a NON-chat memory item on this board:',
      `POST ${BASE}/api/v1/agent/boards/${board.id}/memory`,
      'Body: {"content":"<answer>","tags":["gateway_main", "user_reply"],"source":"user_via_gateway_main"}',
      'Do NOT reply in OpenClaw chat.',
    ]);
  });

  it('lead message: header by kind, correlation line, custom tags and source', () => {
    const text = leadMessage({
      baseUrl: BASE,
      board,
      fromAgentName: 'GW',
      kind: 'question',
      content: 'Status?',
      correlationId: ' c-1 ',
      replyTags: ['x'],
      replySource: 'src',
    });
    expect(text.split('\n')).toEqual([
      'GATEWAY MAIN QUESTION',
      'Board: Launch',
      `Board ID: ${board.id}`,
      'From agent: GW',
      'Correlation ID: c-1',
      '',
      'Status?',
      '',
      'Reply to the gateway agent by writing a NON-chat memory item on this board:',
      `POST ${BASE}/api/v1/agent/boards/${board.id}/memory`,
      'Body: {"content":"...","tags":["x"],"source":"src"}',
      'Do NOT reply in OpenClaw chat.',
    ]);
    expect(
      leadMessage({ baseUrl: BASE, board, fromAgentName: 'GW', kind: 'handoff', content: 'x' }),
    ).toMatch(/^GATEWAY MAIN HANDOFF\n/);
  });

  it('SOUL activity note: reason and source only when non-blank', () => {
    expect(soulUpdatedNote('W')).toBe('SOUL.md updated for W.');
    expect(soulUpdatedNote('W', ' r ', '  ')).toBe('SOUL.md updated for W. Reason: r');
    expect(soulUpdatedNote('W', null, ' https://s ')).toBe(
      'SOUL.md updated for W. Source: https://s',
    );
  });

  it('SOUL content: a string, payload.content, payload.file.content, else null', () => {
    expect(gatewayFileContent('# s')).toBe('# s');
    expect(gatewayFileContent({ content: '# c', file: { content: '# f' } })).toBe('# c');
    expect(gatewayFileContent({ file: { content: '# f' } })).toBe('# f');
    expect(gatewayFileContent({ file: { missing: true } })).toBeNull();
    expect(gatewayFileContent({ content: 1 })).toBeNull();
    expect(gatewayFileContent(['# s'])).toBeNull();
    expect(gatewayFileContent(null)).toBeNull();
  });
});
