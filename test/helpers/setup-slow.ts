// Integration and e2e tests start processes and move real bytes: on a loaded two-core machine
// (CI, or a soak beside) a sound test can outlast jest's 5 s default. This is a hang guard, not a
// speed goal; those live in bench/.
jest.setTimeout(30_000);
