import { Injectable } from '@nestjs/common';

/**
 * The lifecycle API writes intent to the store and says so here; the reconciler (health
 * module, which imports this one) listens and acts at once instead of at its next pass.
 */
@Injectable()
export class AnalysisChanges {
  private readonly listeners: ((analysisId: string) => void)[] = [];

  onChange(listener: (analysisId: string) => void): void {
    this.listeners.push(listener);
  }

  changed(analysisId: string): void {
    for (const listener of this.listeners) listener(analysisId);
  }
}
