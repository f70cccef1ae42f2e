using LoyaltyGrains.Cli;
using LoyaltyGrains.Silo;

// No verb: the engine. A verb (demo, token, stats, whatif, export, migrate): that tool (cli/LoyaltyGrains.Cli).
return await LoyaltyCommandLine.RunAsync(args, _ => EngineHost.RunAsync([]));
