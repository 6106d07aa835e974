import { ValidationError } from 'class-validator';
import { MODEL_RULE } from './decorators';
import { toIssues } from './request-validation.pipe';

function fieldError(property: string, children: ValidationError[] = [], failed = true) {
  const error = new ValidationError();
  error.property = property;
  error.value = `value of ${property}`;
  error.constraints = failed ? { isString: `${property} must be a string` } : undefined;
  error.children = children;
  return error;
}

function modelRuleError(text: string): ValidationError {
  const error = new ValidationError();
  error.property = '__model__';
  error.constraints = { [MODEL_RULE]: text };
  error.children = [];
  return error;
}

describe('toIssues (validation errors as pydantic issues)', () => {
  it('handles a list of 200,000 failing items without exhausting the stack', () => {
    const items = Array.from({ length: 200_000 }, (_, index) =>
      fieldError(String(index), [fieldError('board_id')], false),
    );
    const issues = toIssues([fieldError('board_access', items, false)], ['body']);
    expect(issues).toHaveLength(200_000);
    expect(issues[0].loc).toEqual(['body', 'board_access', 0, 'board_id']);
    expect(issues[199_999].loc).toEqual(['body', 'board_access', 199_999, 'board_id']);
  });

  it('handles nesting 5,000 levels deep without recursion', () => {
    let error = fieldError('leaf');
    for (let depth = 0; depth < 5_000; depth++) error = fieldError('a', [error], false);
    const issues = toIssues([error], ['body']);
    expect(issues).toHaveLength(1);
    expect(issues[0].loc).toHaveLength(5_002);
  });

  it('keeps the field order, parents before their children', () => {
    const issues = toIssues(
      [fieldError('a', [fieldError('x'), fieldError('y')]), fieldError('b')],
      ['body'],
    );
    expect(issues.map((issue) => issue.loc.join('.'))).toEqual([
      'body.a',
      'body.a.x',
      'body.a.y',
      'body.b',
    ]);
  });

  it('reports a model rule only when no field of the model (nested ones included) failed', () => {
    const model = { name: 'n' };
    expect(toIssues([modelRuleError('gateway_id is required')], ['body'], model)).toEqual([
      {
        type: 'value_error',
        loc: ['body'],
        msg: 'Value error, gateway_id is required',
        input: model,
      },
    ]);
    const nestedFieldFailed = toIssues(
      [modelRuleError('outer rule'), fieldError('inner', [fieldError('x')], false)],
      ['body'],
    );
    expect(nestedFieldFailed.map((issue) => [issue.loc.join('.'), issue.msg])).toEqual([
      ['body.inner.x', 'Input should be a valid string'],
    ]);
    // A nested model's own rule is reported and hides the outer one.
    const nestedRule = toIssues(
      [modelRuleError('outer rule'), fieldError('inner', [modelRuleError('inner rule')], false)],
      ['body'],
    );
    expect(nestedRule.map((issue) => [issue.loc.join('.'), issue.msg])).toEqual([
      ['body.inner', 'Value error, inner rule'],
    ]);
  });
});
